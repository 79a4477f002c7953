// Reads a whole input (a file path, or "-" for standard input) as UTF-8 text.

import { readFileSync } from "node:fs";
import { requirePath } from "./path-arg.js";

/** Reads `source` ("-" = stdin) as text. Throws the file system's error when it cannot be read. */
export function readJsonInput(source: string): string {
  requirePath("readJsonInput", "source", source);
  return readFileSync(source === "-" ? 0 : source, "utf8");
}

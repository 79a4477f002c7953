// lorakit's version, read from its package.json: two folders up from dist/cli/version.js, one from cli/version.ts.

import { readFileSync } from "node:fs";

/** The "version" field of lorakit's package.json ("unknown" when it cannot be read). */
export function lorakitVersion(): string {
  for (const rel of ["../../package.json", "../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "lorakit" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not this folder: try the next
    }
  }
  return "unknown";
}

// A path argument of a lorakit/node function, checked before the file system sees it: Node's own errors for a
// non-string or a NUL character are raw TypeErrors that name no lorakit function.

import { ArgumentError } from "../errors.js";

/** Returns v when it is a non-empty string without NUL characters; otherwise an invalid_argument naming `name`. */
export function requirePath(op: string, name: string, v: unknown): string {
  if (typeof v !== "string" || v === "" || v.includes("\0"))
    throw new ArgumentError(
      "invalid_argument",
      `${op}: ${name} is ${typeof v === "string" ? JSON.stringify(v) : v == null ? String(v) : `a ${typeof v}`}, expected a path (a non-empty string without NUL characters)`,
      { name, value: typeof v === "string" ? v : String(v) },
    );
  return v;
}

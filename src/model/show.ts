// Values as error messages show them: numbers as JavaScript prints them (NaN, Infinity, 1e+39; JSON.stringify
// would print null), strings quoted and cut short, anything else by its kind and size.

/** A short rendering of any value for a message. */
export function showValue(v: unknown): string {
  if (Array.isArray(v)) return v.length <= 8 ? `[${v.map(showPlain).join(", ")}]` : `an array of ${v.length} items`;
  return showPlain(v);
}

// One value, without looking into arrays (so a deeply nested one costs nothing)
function showPlain(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || typeof v !== "object") return typeof v === "function" ? "a function" : String(v);
  if (Array.isArray(v)) return `an array of ${v.length} items`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "Object" ? `a ${name}` : "an object";
}

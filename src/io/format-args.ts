// Arguments of the adapter format modules' entry points (GGUF, ONNX, MLX), checked on entry: a value from JavaScript
// that is not what the signature says answers an ArgumentError "invalid_argument" naming the function, the argument
// and what it was, instead of a raw TypeError from inside. Options that are undefined or null mean the defaults.
// An adapter's modules are float32 low-rank pairs: down [dIn, r], up [r, dOut], data of rows × cols values.

import { ArgumentError, ShapeError } from "../errors.js";
import type { PeftModuleAdapter } from "./peft-adapter.js";

/** A short description of a value for a message: null, 5, "x", a Float64Array, an array of 3 items, an object. */
export function shown(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "symbol") return "a symbol";
  if (typeof v === "function") return "a function";
  if (v === null || typeof v !== "object") return String(v);
  if (Array.isArray(v)) return `an array of ${v.length} items`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "Object" ? `a ${name}` : "an object";
}

/** The ArgumentError "invalid_argument" for argument `name` of `op`: "<op>: <name> is <shown>, expected <expected>". */
export function invalidArgument(op: string, name: string, v: unknown, expected: string): ArgumentError {
  return new ArgumentError("invalid_argument", `${op}: ${name} is ${shown(v)}, expected ${expected}`, { name });
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** v when it is a Uint8Array; otherwise invalid_argument naming `name` and what it holds (`what`). */
export function requireBytes(op: string, name: string, v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw invalidArgument(op, name, v, `a Uint8Array (${what})`);
  return v;
}

/** v when it is a plain object (not null, not an array); otherwise invalid_argument with the expected form. */
export function requireObject(op: string, name: string, v: unknown, form: string): Record<string, unknown> {
  if (!isObject(v)) throw invalidArgument(op, name, v, form);
  return v;
}

/** Options: undefined or null give {} (the defaults); anything else must be an object. */
export function optionsArg<T extends object>(op: string, name: string, v: unknown, form: string): Partial<T> {
  if (v === undefined || v === null) return {};
  return requireObject(op, name, v, form) as Partial<T>;
}

/** Options whose `keys` are int32 when given (undefined or null: the default); null options give {}. */
export function int32Options<T extends object>(
  op: string,
  name: string,
  v: unknown,
  keys: readonly (keyof T & string)[],
) {
  const o = optionsArg<T>(op, name, v, `{ ${keys.map((k) => `${k}?`).join(", ")} }`);
  for (const k of keys) {
    const x = o[k] as unknown;
    if (x != null && (!Number.isInteger(x) || (x as number) < -(2 ** 31) || (x as number) >= 2 ** 31))
      throw invalidArgument(op, `${name}.${k}`, x, "an int32");
  }
  return o;
}

/** An optional option that must be one of `allowed` when given (undefined or null: the default). */
export function oneOf<T extends string>(op: string, name: string, v: unknown, allowed: readonly T[]): T | undefined {
  if (v === undefined || v === null) return undefined;
  if (!allowed.includes(v as T)) throw invalidArgument(op, name, v, allowed.map((a) => JSON.stringify(a)).join(", "));
  return v as T;
}

/** An array of adapter modules, each checked by requireModule. */
export function requireModules(op: string, name: string, v: unknown): PeftModuleAdapter[] {
  if (!Array.isArray(v)) throw invalidArgument(op, name, v, "an array of adapter modules");
  for (let i = 0; i < v.length; i++) requireModule(op, `${name}[${i}]`, v[i]);
  return v as PeftModuleAdapter[];
}

/** A loaded adapter { format, modules, … } (loadPeftAdapter, loadMlxAdapter); a PEFT one has its modulesToSave Map. */
export function requireAdapter<T extends { modules: PeftModuleAdapter[] }>(op: string, v: unknown): T {
  const a = requireObject(op, "adapter", v, "a loaded adapter { format, modules } (loadPeftAdapter, loadMlxAdapter)");
  requireModules(op, "adapter.modules", a.modules);
  if (a.format === "peft" && !(a.modulesToSave instanceof Map))
    throw invalidArgument(op, "adapter.modulesToSave", a.modulesToSave, "a Map (a PEFT adapter's full tensors)");
  return a as unknown as T;
}

// One module: path, kind, down [dIn, r] and up [r, dOut] as float32 matrices of rows × cols values, r = down.cols =
// up.rows ≥ 1 (the writers pad and transpose by these numbers).
function requireModule(op: string, name: string, m: unknown): void {
  const mod = requireObject(op, name, m, "an adapter module { modulePath, kind, down, up, r, scaling, … }");
  if (typeof mod.modulePath !== "string") throw invalidArgument(op, `${name}.modulePath`, mod.modulePath, "a string");
  const where = `${name} ("${mod.modulePath}")`;
  if (mod.kind !== "linear" && mod.kind !== "embedding")
    throw invalidArgument(op, `${where} kind`, mod.kind, '"linear" or "embedding"');
  const dims: number[] = [];
  for (const role of ["down", "up"] as const) {
    const f = mod[role] as { data?: unknown; rows?: unknown; cols?: unknown } | null;
    if (!isObject(f) || !(f.data instanceof Float32Array))
      throw invalidArgument(
        op,
        `${where} ${role}`,
        isObject(f) ? f.data : f,
        "a matrix { data: Float32Array, rows, cols }",
      );
    const { rows, cols } = f;
    if (
      typeof rows !== "number" ||
      typeof cols !== "number" ||
      !Number.isSafeInteger(rows) ||
      !Number.isSafeInteger(cols) ||
      rows < 0 ||
      cols < 0 ||
      f.data.length !== rows * cols
    )
      throw new ShapeError(
        "data_length_mismatch",
        `${op}: ${where} ${role} holds ${f.data.length} values, expected rows × cols = ${shown(rows)} × ${shown(cols)}`,
        { name, module: mod.modulePath, role },
      );
    dims.push(rows, cols);
  }
  const [dIn, rDown, rUp, dOut] = dims as [number, number, number, number];
  if (rDown !== rUp || mod.r !== rDown || rDown < 1)
    throw new ShapeError(
      "shape_mismatch",
      `${op}: ${where} has down [${dIn}, ${rDown}], up [${rUp}, ${dOut}] and r ${shown(mod.r)}, expected down [dIn, r] and up [r, dOut] with r ≥ 1`,
      { name, module: mod.modulePath },
    );
  // the writers fold scaling into up: NaN / ±Infinity would be written as such
  if (typeof mod.scaling !== "number" || !Number.isFinite(mod.scaling))
    throw new ArgumentError(
      typeof mod.scaling === "number" ? "non_finite" : "invalid_value",
      `${op}: module "${mod.modulePath}" has scaling ${shown(mod.scaling)} (alpha ${shown(mod.alpha)}, r ${rDown}), expected a finite number`,
      { module: mod.modulePath, scaling: mod.scaling },
    );
  for (const k of ["magnitude", "bias"] as const)
    if (mod[k] !== undefined && !(mod[k] instanceof Float32Array))
      throw invalidArgument(op, `${where} ${k}`, mod[k], "undefined or a Float32Array [dOut]");
  const w = mod.baseWeight as { shape?: unknown; data?: unknown } | undefined;
  if (w !== undefined && (!isObject(w) || !Array.isArray(w.shape) || !(w.data instanceof Float32Array)))
    throw invalidArgument(
      op,
      `${where} baseWeight`,
      w,
      "undefined or a saved tensor { dtype, shape, data: Float32Array }",
    );
}

/**
 * Refuses a factor whose written bytes hold a non-finite value, naming the module and the tensor: a NaN / ±Infinity
 * in the adapter, scaling·up past float32's range (3.4e38), or a value past F16's 65504 / BF16's 3.39e38, which a
 * runtime would add to its output as NaN / ±Infinity.
 * @param x the values before encoding (role "up": scaling·up)   @param bytes x encoded as dtype, little-endian
 */
export function requireFiniteWritten(
  op: string,
  m: PeftModuleAdapter,
  role: "down" | "up",
  tensor: string,
  x: Float32Array,
  dtype: "F32" | "F16" | "BF16",
  bytes: Uint8Array,
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const exponent = dtype === "F16" ? 0x7c00 : 0x7f80; // all-ones exponent: ±Infinity or NaN
  for (let i = 0; i < x.length; i++) {
    const finite =
      dtype === "F32"
        ? Number.isFinite(view.getFloat32(i * 4, true))
        : (view.getUint16(i * 2, true) & exponent) !== exponent;
    if (finite) continue;
    const why = !Number.isFinite(x[i]!)
      ? role === "up"
        ? `scaling ${m.scaling} · up overflows float32 or up holds a non-finite value`
        : "down holds a non-finite value"
      : `${x[i]} is past ${dtype}'s range`;
    throw new ArgumentError(
      "non_finite",
      `${op}: module "${m.modulePath}" ${tensor} value ${i} is not finite as ${dtype} (${why}), expected finite values; nothing was written`,
      { module: m.modulePath, tensor, index: i, dtype },
    );
  }
}

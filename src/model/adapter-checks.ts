// The checks attachAdapter and setAdapterScale make before anything changes: a module's factors (float32, data
// of rows × cols finite values, r = down.cols = up.rows), saved tensors of the model's shapes, and scalings that
// stay finite in float32. Messages name the adapter, the module and the expected form.

import { ArgumentError, ShapeError } from "../errors.js";
import type { PeftModuleAdapter } from "../io/peft-adapter.js";
import { showValue } from "./show.js";

export const ATTACH = "CausalLM.attachAdapter";

// A module as a loader gives it: path, kind, down [dIn, r] and up [r, dOut] as float32 matrices whose data
// holds rows × cols finite values, r = down.cols = up.rows, a finite scaling.
export function checkModule(name: string, m: unknown, i: number): PeftModuleAdapter {
  const mod = m as PeftModuleAdapter;
  const where = `adapter "${name}" module ${typeof mod?.modulePath === "string" ? `"${mod.modulePath}"` : `#${i}`}`;
  const bad = (what: string) =>
    new ArgumentError("invalid_argument", `${ATTACH}: ${where}: ${what}`, { name: "adapter", index: i });
  if (mod === null || typeof mod !== "object") throw bad(`is ${showValue(m)}, expected { modulePath, down, up, … }`);
  if (typeof mod.modulePath !== "string") throw bad(`modulePath is ${showValue(mod.modulePath)}, expected a string`);
  for (const [role, f] of [
    ["down", mod.down],
    ["up", mod.up],
  ] as const) {
    if (f === null || typeof f !== "object" || !(f.data instanceof Float32Array))
      throw bad(`${role} is ${showValue(f?.data ?? f)}, expected a matrix { data: Float32Array, rows, cols }`);
    if (!Number.isSafeInteger(f.rows) || !Number.isSafeInteger(f.cols) || f.data.length !== f.rows * f.cols)
      throw new ShapeError(
        "data_length_mismatch",
        `${ATTACH}: ${where}: ${role} holds ${f.data.length} values, expected rows × cols = ${showValue(f.rows)} × ${showValue(f.cols)}`,
        { name, module: mod.modulePath, role },
      );
    requireFiniteData(name, `${mod.modulePath} ${role}`, f.data);
  }
  if (mod.down.cols !== mod.up.rows || mod.r !== mod.down.cols || mod.r < 1)
    throw new ShapeError(
      "shape_mismatch",
      `${ATTACH}: ${where}: down is [${mod.down.rows}, ${mod.down.cols}], up [${mod.up.rows}, ${mod.up.cols}] and r ${showValue(mod.r)}, expected down [dIn, r] and up [r, dOut] with r ≥ 1`,
      { name, module: mod.modulePath },
    );
  if (typeof mod.scaling !== "number" || !Number.isFinite(mod.scaling))
    throw bad(`scaling is ${showValue(mod.scaling)}, expected a finite number`);
  if (mod.magnitude !== undefined) {
    if (!(mod.magnitude instanceof Float32Array))
      throw bad(`magnitude is ${showValue(mod.magnitude)}, expected a Float32Array [dOut]`);
    requireFiniteData(name, `${mod.modulePath} magnitude`, mod.magnitude);
  }
  return mod;
}

// The term's factor scaling × scale must be a finite float32 (the kernels run in float32: 1e39 would be Infinity)
export function checkScaling(op: string, name: string, module: string, scaling: number, scale: number): void {
  if (!Number.isFinite(Math.fround(scaling * scale)))
    throw new ArgumentError(
      "invalid_argument",
      `${op}: scale ${showValue(scale)} × the file's scaling ${showValue(scaling)} of adapter "${name}" module "${module}" is ${showValue(scaling * scale)}, expected a factor float32 can hold (|x| < 3.4e38)`,
      { name: "scale", value: scale },
    );
}

function requireFiniteData(name: string, what: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++)
    if (!Number.isFinite(data[i]!))
      throw new ArgumentError(
        "non_finite",
        `${ATTACH}: adapter "${name}" ${what} holds ${data[i]} at index ${i}, expected finite values`,
        { name, index: i },
      );
}

// A saved tensor (lm_head, embedding table, bias, magnitude) of the model's shape, with its data: returns a copy.
export function checkSaved(
  name: string,
  key: string,
  t: { shape: readonly number[]; data: Float32Array } | undefined,
  shape: number[],
): Float32Array {
  const given = Array.isArray(t?.shape) ? t.shape : [];
  if (given.length !== shape.length || given.some((d, i) => d !== shape[i]))
    throw new ShapeError(
      "shape_mismatch",
      `${ATTACH}: adapter "${name}" saves "${key}" with shape [${given.join(", ")}], expected [${shape.join(", ")}] (the model's)`,
      { name, key, shape: given, expected: shape },
    );
  const size = shape.reduce((a, b) => a * b, 1);
  if (!(t!.data instanceof Float32Array) || t!.data.length !== size)
    throw new ShapeError(
      "data_length_mismatch",
      `${ATTACH}: adapter "${name}" saves "${key}" as ${t!.data instanceof Float32Array ? `${t!.data.length} values` : showValue(t!.data)}, expected a Float32Array of ${size} values ([${shape.join(", ")}])`,
      { name, key },
    );
  requireFiniteData(name, `"${key}"`, t!.data);
  return t!.data.slice();
}

export function expectDims(name: string, mod: PeftModuleAdapter, dIn: number, dOut: number): void {
  if (mod.down.rows !== dIn || mod.up.cols !== dOut)
    throw new ShapeError(
      "shape_mismatch",
      `${ATTACH}: adapter "${name}" module "${mod.modulePath}" has down [${mod.down.rows}, ${mod.r}] and up [${mod.r}, ${mod.up.cols}], expected [${dIn}, r] and [r, ${dOut}] (the model's module is ${dIn} → ${dOut})`,
      { name, module: mod.modulePath, dIn: mod.down.rows, dOut: mod.up.cols, expected: [dIn, dOut] },
    );
  // a DoRA magnitude [dOut] (checkModule made sure it is a finite Float32Array)
  if (mod.magnitude !== undefined && mod.magnitude.length !== dOut)
    throw new ShapeError(
      "shape_mismatch",
      `${ATTACH}: adapter "${name}" saves "${mod.modulePath} magnitude" with shape [${mod.magnitude.length}], expected [${dOut}] (the model's)`,
      { name, key: `${mod.modulePath} magnitude`, shape: [mod.magnitude.length], expected: [dOut] },
    );
}

export function readScale(op: string, scale: unknown): number {
  if (scale === undefined) return 1;
  if (typeof scale !== "number" || !Number.isFinite(scale))
    throw new ArgumentError("invalid_argument", `${op}: scale must be a finite number, got ${showValue(scale)}`, {
      name: "scale",
      value: scale,
    });
  return scale;
}

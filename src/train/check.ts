// Argument checks shared by the training toolkit's public entry points. Each throws an ArgumentError
// ("invalid_argument") whose message names the operation, the argument, what it got and what it expected.

import { ArgumentError, ShapeError } from "../errors.js";
import { describeArray, localFloatArray } from "../lora/typed.js";
import type { Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import type { Module } from "./module.js";

/** "null", "an object", "a Float32Array", "an array", a number itself or a quoted string, for messages. */
export function shown(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v);
  if (Array.isArray(v)) return "an array";
  if (v !== null && typeof v === "object" && !ArrayBuffer.isView(v)) return "an object";
  return v === undefined ? "undefined" : describeArray(v);
}

/** An ArgumentError "<op>: <name> is <shown>, expected <expected>". */
export function badArgument(op: string, name: string, v: unknown, expected: string): ArgumentError {
  return new ArgumentError("invalid_argument", `${op}: ${name} is ${shown(v)}, expected ${expected}`, {
    name,
    value: typeof v === "number" || typeof v === "string" ? v : shown(v),
  });
}

/** A non-null object (options, a dataset); throws naming it otherwise. */
export function requireObject<T>(op: string, name: string, v: T, expected: string): NonNullable<T> {
  if (v === null || typeof v !== "object") throw badArgument(op, name, v, expected);
  return v as NonNullable<T>;
}

/** An options object; null and undefined mean the defaults ({}). */
export function optionsObject<T extends object>(op: string, v: T | null | undefined): Partial<T> {
  if (v === null || v === undefined) return {};
  return requireObject(op, "options", v, "an options object");
}

/** An integer ≥ min (a safe integer, so not NaN, ±Infinity or a fraction). */
export function requireInteger(op: string, name: string, v: unknown, min: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min)
    throw badArgument(op, name, v, min === 1 ? "a positive integer" : `an integer ≥ ${min}`);
  return v;
}

/** A finite number in [lo, hi]. */
export function requireNumberIn(op: string, name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi)
    throw badArgument(op, name, v, `a finite number in [${lo}, ${hi === Number.MAX_VALUE ? "∞" : hi})`);
  return v;
}

/** A Module: an object with forward, backward, parameters and zeroGrad functions. */
export function requireModule(op: string, name: string, v: unknown): Module {
  const m = v as Partial<Module> | null;
  const ok =
    m !== null &&
    typeof m === "object" &&
    typeof m.forward === "function" &&
    typeof m.backward === "function" &&
    typeof m.parameters === "function" &&
    typeof m.zeroGrad === "function";
  if (!ok) throw badArgument(op, name, v, "a Module (forward, backward, parameters, zeroGrad), e.g. an Mlp or Linear");
  return v as Module;
}

/** A {data, rows, cols} float matrix whose data length is rows·cols (ShapeError otherwise). */
export function requireMatrix(op: string, name: string, v: unknown): Matrix {
  const m = requireMatrixView(op, name, v);
  if (m.data.length !== m.rows * m.cols)
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: ${name}.data has length ${m.data.length}, expected ${m.rows * m.cols} for shape ${fmtShape([m.rows, m.cols])}`,
      { name, length: m.data.length, shape: [m.rows, m.cols] },
    );
  return m;
}

/** A matrix with `cols` columns (and `rows` rows when given): shape_mismatch naming both shapes otherwise. */
export function requireShape(op: string, name: string, m: Matrix, rows: number, cols: number, why: string): void {
  if (m.rows !== rows || m.cols !== cols)
    throw new ShapeError(
      "shape_mismatch",
      `${op}: ${name} has shape ${fmtShape([m.rows, m.cols])}, expected ${fmtShape([rows, cols])} ${why}`,
      { name, shape: [m.rows, m.cols], expected: [rows, cols] },
    );
}

/** A {data, rows, cols} view with Float32Array/Float64Array data and integer dims ≥ 0; its length is not checked. */
export function requireMatrixView(op: string, name: string, v: unknown): Matrix {
  const m = v as Partial<Matrix> | null;
  const data = m !== null && typeof m === "object" ? localFloatArray(m.data) : null;
  if (data === null || !Number.isSafeInteger(m!.rows) || !Number.isSafeInteger(m!.cols) || m!.rows! < 0 || m!.cols! < 0)
    throw new ShapeError(
      "invalid_matrix",
      `${op}: ${name} is ${m !== null && typeof m === "object" && !Array.isArray(m) ? "not" : `${shown(v)}, not`} a {data, rows, cols} matrix with Float32Array or Float64Array data`,
      { name },
    );
  return { data, rows: m!.rows!, cols: m!.cols! };
}

/** An Rng (createRng): an object with uniform() and normal(). */
export function requireRng(op: string, name: string, v: unknown): void {
  const r = v as { uniform?: unknown; normal?: unknown } | null;
  if (r === null || typeof r !== "object" || typeof r.uniform !== "function" || typeof r.normal !== "function")
    throw badArgument(op, name, v, "an Rng (createRng(seed))");
}

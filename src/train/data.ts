// Datasets for the training demo, generated in code from a seed (no download). A Dataset is x: [n, dIn]
// float64 rows with one class index per row. The spiral task lives in a 2-D plane of R^dIn:
//   source: x = s·z·Uᵀ + ε,  target: x = s·z·U'ᵀ + ε,  U' = cos φ·U + sin φ·V,
// with z a point of a `classes`-arm spiral, U and V orthonormal [dIn, 2] bases of two orthogonal planes,
// φ the tilt and ε isotropic noise. The shift moves the data into a new plane; a rank-2 change of the first
// layer's weight maps the new plane back onto the old one exactly (see docs/training.md).

import { ArgumentError, ShapeError } from "../errors.js";
import { findNonFinite } from "../lora/base.js";
import { createRng, type Rng } from "../lora/rng.js";
import type { Matrix } from "../matrix.js";
import { checkResultSize, fmtShape } from "../shape.js";
import { badArgument, requireInteger, requireMatrix, requireObject } from "./check.js";
import { deriveSeed } from "./shuffle.js";

/** Labelled rows: x [n, dIn], labels [n] in [0, classes). */
export interface Dataset {
  x: Matrix<Float64Array>;
  labels: Int32Array;
  classes: number;
}

/** Options of makeSpiralTask. */
export interface SpiralTaskOptions {
  seed: number;
  /** Input dimension (≥ 4), default 16. */
  dIn?: number;
  /** Number of spiral arms = classes (≥ 2), default 3. */
  classes?: number;
  /** Turns of each arm, default 1. */
  turns?: number;
  /** Training rows per task, default 2048. */
  nTrain?: number;
  /** Test rows per task, default 1024. */
  nTest?: number;
  /** Tilt φ of the target plane towards an orthogonal plane, in degrees, default 60. */
  tiltDegrees?: number;
  /** Standard deviation of the isotropic noise ε, default 0.05. */
  noise?: number;
}

/** Source and target tasks, each with a training and a test split. */
export interface SpiralTask {
  source: { train: Dataset; test: Dataset };
  target: { train: Dataset; test: Dataset };
}

const SCALE = 2;

// Orthonormal columns: Gram–Schmidt over Gaussian vectors. Returns k vectors of length d.
function orthonormal(d: number, k: number, rng: Rng): Float64Array[] {
  const out: Float64Array[] = [];
  while (out.length < k) {
    const v = new Float64Array(d);
    for (let i = 0; i < d; i++) v[i] = rng.normal();
    for (const u of out) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += v[i]! * u[i]!;
      for (let i = 0; i < d; i++) v[i] = v[i]! - dot * u[i]!;
    }
    let norm = 0;
    for (let i = 0; i < d; i++) norm += v[i]! * v[i]!;
    norm = Math.sqrt(norm);
    if (norm < 1e-6) continue;
    for (let i = 0; i < d; i++) v[i] = v[i]! / norm;
    out.push(v);
  }
  return out;
}

function spiralRows(n: number, plane: [Float64Array, Float64Array], o: Required<SpiralTaskOptions>, rng: Rng): Dataset {
  const { dIn: d, classes, turns, noise } = o;
  const x = new Float64Array(n * d);
  const labels = new Int32Array(n);
  const [p0, p1] = plane;
  for (let i = 0; i < n; i++) {
    const c = i % classes;
    const t = 0.15 + 0.85 * rng.uniform();
    const angle = (2 * Math.PI * c) / classes + 2 * Math.PI * turns * t;
    const z0 = SCALE * t * Math.cos(angle);
    const z1 = SCALE * t * Math.sin(angle);
    for (let j = 0; j < d; j++) x[i * d + j] = z0 * p0[j]! + z1 * p1[j]! + noise * rng.normal();
    labels[i] = c;
  }
  return { x: { data: x, rows: n, cols: d }, labels, classes };
}

/**
 * The source and target spiral tasks (see the module header). Same seed, same data.
 * @throws {ArgumentError} dIn < 4, classes < 2, a non-positive count, a non-finite seed, turns or tilt, or a
 *   negative or non-finite noise ("invalid_argument")
 */
export function makeSpiralTask(options: SpiralTaskOptions): SpiralTask {
  const op = "makeSpiralTask";
  requireObject(op, "options", options, "an options object { seed, … }");
  const o: Required<SpiralTaskOptions> = {
    dIn: 16,
    classes: 3,
    turns: 1,
    nTrain: 2048,
    nTest: 1024,
    tiltDegrees: 60,
    noise: 0.05,
    ...options,
  };
  if (!Number.isInteger(o.dIn) || o.dIn < 4 || !Number.isInteger(o.classes) || o.classes < 2)
    throw new ArgumentError(
      "invalid_argument",
      `makeSpiralTask: dIn ${o.dIn} and classes ${o.classes}, expected integers dIn ≥ 4 (two orthogonal planes) and classes ≥ 2`,
      { dIn: o.dIn, classes: o.classes },
    );
  if (!Number.isInteger(o.nTrain) || o.nTrain < 1 || !Number.isInteger(o.nTest) || o.nTest < 1)
    throw new ArgumentError(
      "invalid_argument",
      `makeSpiralTask: nTrain ${o.nTrain} and nTest ${o.nTest}, expected positive integers`,
      { nTrain: o.nTrain, nTest: o.nTest },
    );
  if (typeof o.seed !== "number" || !Number.isFinite(o.seed)) throw badArgument(op, "seed", o.seed, "a finite number");
  for (const name of ["turns", "tiltDegrees"] as const)
    if (typeof o[name] !== "number" || !Number.isFinite(o[name]))
      throw badArgument(op, name, o[name], "a finite number");
  if (typeof o.noise !== "number" || !(o.noise >= 0) || !Number.isFinite(o.noise))
    throw badArgument(op, "noise", o.noise, "a finite number ≥ 0 (a standard deviation)");
  checkResultSize(op, "each split's x", [Math.max(o.nTrain, o.nTest), o.dIn]);
  const rng = createRng(deriveSeed(o.seed, "spiral-task"));
  const [u0, u1, v0, v1] = orthonormal(o.dIn, 4, rng) as [Float64Array, Float64Array, Float64Array, Float64Array];
  const phi = (o.tiltDegrees * Math.PI) / 180;
  const tilt = (u: Float64Array, v: Float64Array) => u.map((ui, j) => Math.cos(phi) * ui + Math.sin(phi) * v[j]!);
  const source: [Float64Array, Float64Array] = [u0, u1];
  const target: [Float64Array, Float64Array] = [tilt(u0, v0), tilt(u1, v1)];
  return {
    source: { train: spiralRows(o.nTrain, source, o, rng), test: spiralRows(o.nTest, source, o, rng) },
    target: { train: spiralRows(o.nTrain, target, o, rng), test: spiralRows(o.nTest, target, o, rng) },
  };
}

/**
 * Checks a dataset's structure in O(1): x a float matrix [n, dIn], labels of length n. With `full`, also every label
 * (an integer in [0, classes)) and every x value (finite), in O(n·dIn). Returns x.
 * @throws {ArgumentError} not a dataset, a bad label ("invalid_value"), a non-finite x value ("non_finite")
 * @throws {ShapeError} x not a matrix, labels of another length ("shape_mismatch")
 */
export function checkDataset(op: string, name: string, ds: Dataset, full: boolean): Matrix {
  requireObject(op, name, ds, "a dataset { x: [n, dIn], labels: n class indices, classes }");
  const x = requireMatrix(op, `${name}.x`, ds.x);
  const labels = ds.labels as ArrayLike<number> | null | undefined;
  if (labels === null || typeof labels !== "object" || typeof labels.length !== "number")
    throw badArgument(op, `${name}.labels`, labels, "an array of class indices (Int32Array)");
  if (labels.length !== x.rows)
    throw new ShapeError(
      "shape_mismatch",
      `${op}: ${name}.labels has length ${labels.length}, expected ${x.rows} because ${name}.x is ${fmtShape([x.rows, x.cols])} (one label per row)`,
      { name: `${name}.labels`, shape: [labels.length], expected: [x.rows] },
    );
  if (!full) return x;
  const classes = requireInteger(op, `${name}.classes`, ds.classes, 1);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= classes)
      throw new ArgumentError(
        "invalid_value",
        `${op}: ${name}.labels[${i}] is ${y}, expected an integer in [0, ${classes}) (${name}.classes = ${classes})`,
        { name: `${name}.labels`, index: i, value: y, classes },
      );
  }
  const bad = findNonFinite(x.data);
  if (bad.count > 0) {
    const at = [Math.floor(bad.first / x.cols), bad.first % x.cols];
    throw new ArgumentError(
      "non_finite",
      `${op}: ${name}.x has ${bad.count} non-finite values (first ${x.data[bad.first]} at ${fmtShape(at)}), expected finite inputs`,
      { name: `${name}.x`, count: bad.count, index: at },
    );
  }
  return x;
}

/**
 * Copies rows order[start .. end) of ds into a batch: x [end − start, dIn] and their labels.
 * @throws {ArgumentError} start/end not integers with 0 ≤ start ≤ end ≤ order.length, or a row index outside
 *   [0, n) ("invalid_argument"); a malformed ds (see checkDataset)
 */
export function gatherBatch(
  ds: Dataset,
  order: ArrayLike<number>,
  start: number,
  end: number,
): { x: Matrix<Float64Array>; labels: Int32Array } {
  const op = "gatherBatch";
  const xs = checkDataset(op, "ds", ds, false);
  if (order === null || typeof order !== "object" || typeof order.length !== "number")
    throw badArgument(op, "order", order, "an array of row indices");
  requireInteger(op, "start", start, 0);
  if (requireInteger(op, "end", end, 0) < start || end > order.length)
    throw badArgument(op, "end", end, `an integer in [start, order.length] = [${start}, ${order.length}]`);
  const d = xs.cols;
  const n = end - start;
  const x = new Float64Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const row = order[start + i]!;
    if (!Number.isInteger(row) || row < 0 || row >= xs.rows)
      throw badArgument(
        op,
        `order[${start + i}]`,
        row,
        `a row index in [0, ${xs.rows}) of ds.x ${fmtShape([xs.rows, d])}`,
      );
    x.set(xs.data.subarray(row * d, (row + 1) * d), i * d);
    labels[i] = ds.labels[row]!;
  }
  return { x: { data: x, rows: n, cols: d }, labels };
}

// Validation of the four operands of a LoRA forward call (x, W, down, up) against each other, done once
// before any kernel runs. Produces flat row-major data of one dtype plus the dims n, dIn, dOut, r.

import { ArgumentError, ShapeError } from "../errors.js";
import { type FloatArray, fromNested } from "../matrix.js";
import { checkResultSize, fmtShape } from "../shape.js";
import { type Operand, readOperand, shapeOf } from "./operand.js";

/** Display names of the operands; loraForward says "B"/"A", the role-named ops "down"/"up". */
export interface OperandNames {
  down: string;
  up: string;
}

/** A validated forward problem: x [n, dIn], w [dIn, dOut], down [dIn, r], up [r, dOut], one dtype. */
export interface LoraPlan {
  x: Operand;
  n: number;
  dIn: number;
  dOut: number;
  r: number;
  xData: FloatArray;
  wData: FloatArray;
  downData: FloatArray;
  upData: FloatArray;
}

function dtypeLabel(o: Operand): string {
  if (o.form === "nested") return "a nested number[][] (float64)";
  return o.data instanceof Float32Array ? "float32" : "float64";
}

function sameDtype(a: Operand, b: Operand): boolean {
  if (a.form === "nested" || b.form === "nested") return a.form === b.form;
  return a.data.constructor === b.data.constructor;
}

/** Validates x, W, down, up for `op` and returns the plan. Throws ShapeError / ArgumentError. */
export function planLora(
  op: string,
  xIn: unknown,
  wIn: unknown,
  downIn: unknown,
  upIn: unknown,
  names: OperandNames,
): LoraPlan {
  const x = readOperand(op, "x", xIn, { allowLeadDims: true });
  const w = readOperand(op, "W", wIn);
  const down = readOperand(op, names.down, downIn, { allowZeroCols: true });
  const up = readOperand(op, names.up, upIn);
  for (const [name, o] of [
    ["W", w],
    [names.down, down],
    [names.up, up],
  ] as const) {
    if (!sameDtype(x, o)) {
      throw new ArgumentError(
        "dtype_mismatch",
        `${op}: ${name} is ${dtypeLabel(o)} but x is ${dtypeLabel(x)}; pass all four matrices in one dtype (lorakit never converts silently: convert explicitly, e.g. Float32Array.from(${name}.data))`,
        { name, dtype: dtypeLabel(o), expected: dtypeLabel(x) },
      );
    }
  }
  // A nested x with no rows has no column count of its own: dIn comes from W.
  const dIn = x.cols >= 0 ? x.cols : Math.max(w.rows, 0);
  const wShape = shapeOf(w);
  if (w.rows !== dIn) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: W has shape ${fmtShape(wShape)}, expected [${dIn}, dOut] because x is ${fmtShape(shapeOf(x))} (dIn = ${dIn})`,
      {
        name: "W",
        shape: wShape,
        expected: [dIn, "dOut"],
      },
    );
  }
  const dOut = Math.max(w.cols, 0);
  const downShape = shapeOf(down);
  if (down.rows !== dIn) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: ${names.down} has shape ${fmtShape(downShape)}, expected [${dIn}, r] because x is ${fmtShape(shapeOf(x))} (dIn = ${dIn})`,
      { name: names.down, shape: downShape, expected: [dIn, "r"] },
    );
  }
  const r = Math.max(down.cols, 0);
  if (r === 0) {
    throw new ShapeError(
      "invalid_rank",
      `${op}: ${names.down} has shape ${fmtShape(downShape)}, so r = 0; expected r ≥ 1 (r is the column count of ${names.down})`,
      {
        name: names.down,
        shape: downShape,
      },
    );
  }
  const upShape = shapeOf(up);
  if (up.rows !== r) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: ${names.up} has shape ${fmtShape(upShape)}, expected [${r}, dOut] because ${names.down} is ${fmtShape(downShape)} (r = ${r})`,
      { name: names.up, shape: upShape, expected: [r, "dOut"] },
    );
  }
  if (up.cols !== dOut) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: ${names.up} has shape ${fmtShape(upShape)}, expected [${r}, ${dOut}] because W is ${fmtShape(wShape)} (dOut = ${dOut})`,
      { name: names.up, shape: upShape, expected: [r, dOut] },
    );
  }
  checkResultSize(op, "h", [...x.lead, dOut]); // before anything is allocated
  const flat = (o: Operand, cols: number): FloatArray => (o.nested ? fromNested(o.nested, cols).data : o.data);
  return {
    x,
    n: x.rows,
    dIn,
    dOut,
    r,
    xData: flat(x, dIn),
    wData: flat(w, dOut),
    downData: flat(down, r),
    upData: flat(up, dOut),
  };
}

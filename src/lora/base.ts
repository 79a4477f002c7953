// The frozen base weight of a linear layer and the products every LoRA op needs from it. Row-major typed arrays.
// Layout "in_out": W stored [dIn, dOut] (lorakit's mission layout); "out_in": W stored [dOut, dIn] (PEFT/torch
// nn.Linear.weight), read through the transB flag of gemm, never copied. A delta ΔW = s·down·up is always
// formed in the same layout as W, so W ± ΔW is an elementwise update.

import { ArgumentError, ShapeError } from "../errors.js";
import { packPanels, panelIndex, unpackPanels } from "../kernels/panel.js";
import type { QuantKernelType } from "../kernels/quant-scalar.js";
import { addLowRank, gemm, loraGemm, panelGemm, quantLoraGemm } from "../kernels/select.js";
import type { FloatArray, Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import { localFloatArray } from "./typed.js";
import type { VariantContext } from "./variants.js";

/** Storage layout of a base weight: "in_out" = [dIn, dOut], "out_in" = [dOut, dIn] (PEFT/torch). */
export type WeightLayout = "in_out" | "out_in";

/** A base weight with its layout and logical dims. */
export interface BaseWeight<T extends FloatArray = FloatArray> {
  /** The float weight; an empty Float32Array when the base is quantized. */
  data: T;
  dIn: number;
  dOut: number;
  layout: WeightLayout;
  /**
   * data is pre-packed in kernel panels (kernels/panel.ts) as the logical [dIn, dOut] (layout "in_out"):
   * float32, panelLength(dIn, dOut) floats. Products read it in place; deltas are packed the same way.
   */
  packed?: boolean;
  /** A quantized base (Q8_0/Q4_0 blocks along the stored rows, src/lora/quant.ts): products read it in place. */
  quant?: { bytes: Uint8Array; type: QuantKernelType; source: { type: string; rows: number; cols: number } };
}

// A packed base is float32 (readPackedBase), and so are the operands of its products.
const f32 = (a: FloatArray): Float32Array => a as Float32Array;

/** Allocates a zeroed array of the same type as like. */
export function alloc<T extends FloatArray>(like: T, len: number): T {
  const Ctor = like.constructor as { new (n: number): T };
  return new Ctor(len);
}

/** out = x·W: x [n, dIn] → [n, dOut] (beta 0 overwrites, 1 accumulates). */
export function baseProduct<T extends FloatArray>(out: T, x: T, w: BaseWeight<T>, n: number, beta: 0 | 1 = 0): T {
  if (w.quant) return quantProduct(out, x, w, n, 1, beta, false);
  if (w.packed) return panelGemm(f32(out), f32(x), f32(w.data), n, w.dIn, w.dOut, beta) as unknown as T;
  // in_out: op(b) = W [dIn, dOut]; out_in: W stored [dOut, dIn] = op(b)ᵀ
  return gemm(out, x, w.data, n, w.dIn, w.dOut, false, w.layout === "out_in", 1, beta);
}

/**
 * h = x·W + s·(x·down)·up for one plain LoRA adapter as one fused product (loraGemm: in WebAssembly the low-rank
 * term is added to each output tile while it is in registers, so h is written once and no [n, dOut] temporary is
 * made). Returns h [n, dOut] and t = x·down [n, r], which backward needs.
 */
export function fusedLoraProduct<T extends FloatArray>(
  x: T,
  w: BaseWeight<T>,
  down: T,
  up: T,
  r: number,
  s: number,
  n: number,
): { h: T; t: T } {
  const t = gemm(alloc(x, n * r), x, down, n, w.dIn, r, false, false, 1, 0); // x [n, dIn] · down [dIn, r]
  if (w.quant) {
    const { bytes, type } = w.quant;
    const out = new Float32Array(n * w.dOut);
    const f = [x, t, up] as unknown as Float32Array[]; // a quantized base is float32 (readLayerBase)
    quantLoraGemm(out, f[0]!, bytes, type, f[1]!, f[2]!, n, w.dIn, w.dOut, r, s, w.layout === "out_in");
    return { h: out as unknown as T, t };
  }
  if (w.packed) {
    const h = panelGemm(new Float32Array(n * w.dOut), f32(x), f32(w.data), n, w.dIn, w.dOut, 0, f32(t), f32(up), r, s);
    return { h: h as unknown as T, t };
  }
  const h = loraGemm(alloc(x, n * w.dOut), x, w.data, t, up, n, w.dIn, w.dOut, r, s, undefined, w.layout === "out_in");
  return { h, t };
}

/** out = alpha·dH·Wᵀ (+ out when beta = 1): dH [n, dOut] → [n, dIn]. */
export function baseGradInput<T extends FloatArray>(
  out: T,
  dH: T,
  w: BaseWeight<T>,
  n: number,
  alpha: number,
  beta: 0 | 1,
): T {
  // in_out: W stored [dIn, dOut] is op(b) = Wᵀ [dOut, dIn] read with transB; out_in: W stored [dOut, dIn] = Wᵀ
  if (w.quant) return quantProduct(out, dH, w, n, alpha, beta, true);
  // a packed base is unpacked for it (training through a packed base is rare: the model runtime is inference)
  const data = w.packed ? (unpackPanels(f32(w.data), w.dIn, w.dOut) as unknown as T) : w.data;
  return gemm(out, dH, data, n, w.dOut, w.dIn, false, w.layout === "in_out", alpha, beta);
}

/**
 * out = alpha·x·W (transposed: alpha·x·Wᵀ) + beta·out over a quantized base, float32. x·W reads W stored in_out
 * [dIn, dOut] as it is and out_in [dOut, dIn] transposed; x·Wᵀ the other way round. Both keep the blocks along the
 * axis the kernel expects (the stored rows), so neither layout is ever copied.
 */
function quantProduct<T extends FloatArray>(
  out: T,
  x: T,
  w: BaseWeight<T>,
  n: number,
  alpha: number,
  beta: 0 | 1,
  transposed: boolean,
): T {
  const { bytes, type } = w.quant!;
  const [k, cols] = transposed ? [w.dOut, w.dIn] : [w.dIn, w.dOut];
  const transW = (w.layout === "out_in") !== transposed;
  const o = out as unknown as Float32Array;
  const xf = x as unknown as Float32Array;
  if (alpha === 1 && beta === 0) {
    quantLoraGemm(o, xf, bytes, type, null, null, n, k, cols, 0, 0, transW);
    return out;
  }
  const tmp = quantLoraGemm(new Float32Array(n * cols), xf, bytes, type, null, null, n, k, cols, 0, 0, transW);
  for (let i = 0; i < tmp.length; i++) o[i] = (beta ? o[i]! : 0) + alpha * tmp[i]!;
  return out;
}

/** out = s·down·up in the weight's layout: [dIn, dOut] (in_out) or its transpose [dOut, dIn] (out_in). */
export function deltaInto<T extends FloatArray>(
  out: T,
  down: T,
  up: T,
  s: number,
  dIn: number,
  dOut: number,
  r: number,
  layout: WeightLayout,
): T {
  if (layout === "in_out") return gemm(out, down, up, dIn, r, dOut, false, false, s, 0); // [dIn, r]·[r, dOut]
  return gemm(out, up, down, dOut, r, dIn, true, true, s, 0); // upᵀ [dOut, r] · downᵀ [r, dIn]
}

/** Index of element (i, j) of the logical [dIn, dOut] weight in its stored array (layout, or packed panels). */
export function elementIndex(w: {
  dIn: number;
  dOut: number;
  layout: WeightLayout;
  packed?: boolean;
}): (i: number, j: number) => number {
  const { dIn, dOut } = w;
  if (w.packed) return (i, j) => panelIndex(dIn, i, j);
  return w.layout === "in_out" ? (i, j) => i * dOut + j : (i, j) => j * dIn + i;
}

/**
 * Euclidean norm of each logical column j (output feature) of a [dIn, dOut] weight stored in `layout`, summed in
 * float64 and rounded once to v's dtype (so a magnitude initialised from it divides to exactly 1).
 */
export function columnNorms<T extends FloatArray>(
  v: T,
  w: { dIn: number; dOut: number; layout: WeightLayout; packed?: boolean },
): T {
  const at = elementIndex(w);
  const out = alloc(v, w.dOut);
  for (let j = 0; j < w.dOut; j++) {
    let s = 0;
    for (let i = 0; i < w.dIn; i++) {
      const e = v[at(i, j)]!;
      s += e * e;
    }
    out[j] = Math.sqrt(s);
  }
  return out;
}

/** Counts non-finite entries; returns the count and the flat index of the first (−1 if none). */
export function findNonFinite(a: FloatArray): { count: number; first: number } {
  let count = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]!)) {
      if (first < 0) first = i;
      count++;
    }
  }
  return { count, first };
}

function dtypeOf(a: FloatArray): string {
  return a instanceof Float32Array ? "float32" : "float64";
}

/**
 * Validates a low-rank pair against a layer of dims dIn × dOut and dtype like: down [dIn, r], up [r, dOut],
 * r ≥ 1, same array type. Returns r. `where` ends the first message ("because the layer has dIn = 4").
 */
export function checkLowRank(
  op: string,
  down: unknown,
  up: unknown,
  dIn: number,
  dOut: number,
  like: FloatArray,
): number {
  const d = checkMatrix(op, "down", down);
  const u = checkMatrix(op, "up", up);
  for (const [name, m] of [
    ["down", d],
    ["up", u],
  ] as const) {
    if (m.data.constructor !== like.constructor) {
      throw new ArgumentError(
        "dtype_mismatch",
        `${op}: ${name} is ${dtypeOf(m.data)}, expected ${dtypeOf(like)} like the base weight (convert explicitly, e.g. ${like.constructor.name}.from(${name}.data))`,
        { name, dtype: dtypeOf(m.data), expected: dtypeOf(like) },
      );
    }
  }
  if (d.rows !== dIn) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: down has shape ${fmtShape([d.rows, d.cols])}, expected [${dIn}, r] because the base weight has dIn = ${dIn}`,
      { name: "down", shape: [d.rows, d.cols], expected: [dIn, "r"] },
    );
  }
  const r = d.cols;
  if (r < 1) {
    throw new ShapeError(
      "invalid_rank",
      `${op}: down has shape ${fmtShape([d.rows, d.cols])}, so r = 0; expected r ≥ 1`,
      {
        name: "down",
        r,
      },
    );
  }
  if (u.rows !== r || u.cols !== dOut) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: up has shape ${fmtShape([u.rows, u.cols])}, expected [${r}, ${dOut}] because down is ${fmtShape([d.rows, r])} (r = ${r}) and the base weight has dOut = ${dOut}`,
      { name: "up", shape: [u.rows, u.cols], expected: [r, dOut] },
    );
  }
  return r;
}

/** Checks a {data, rows, cols} view: float typed data of length rows·cols. */
export function checkMatrix(op: string, name: string, m: unknown): Matrix {
  const v = m as Partial<Matrix> | null;
  const data = v !== null && typeof v === "object" ? localFloatArray(v.data) : null; // any realm's typed array
  const ok =
    v !== null &&
    typeof v === "object" &&
    data !== null &&
    Number.isSafeInteger(v.rows) &&
    Number.isSafeInteger(v.cols) &&
    v.rows! >= 0 &&
    v.cols! >= 0;
  if (!ok) {
    throw new ShapeError(
      "invalid_matrix",
      `${op}: ${name} is not a {data, rows, cols} matrix with Float32Array or Float64Array data`,
      { name },
    );
  }
  const mm: Matrix = { data: data!, rows: v.rows!, cols: v.cols! };
  if (mm.data.length !== mm.rows * mm.cols) {
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: ${name}.data has length ${mm.data.length}, expected ${mm.rows * mm.cols} for shape ${fmtShape([mm.rows, mm.cols])}`,
      { name, length: mm.data.length, shape: [mm.rows, mm.cols] },
    );
  }
  return mm;
}

/**
 * The variant context of a base weight. unmerged() gives the weight with nothing merged (default: w itself).
 */
export function variantContext<T extends FloatArray>(
  w: BaseWeight<T>,
  bias?: FloatArray,
  unmerged: () => FloatArray = () => w.data,
): VariantContext {
  return {
    weight: w.data,
    unmergedWeight: unmerged,
    bias,
    dIn: w.dIn,
    dOut: w.dOut,
    gemm,
    addLowRank,
    at: elementIndex(w),
    baseProduct: (xb, n) => baseProduct(alloc(xb, n * w.dOut), xb as T, w, n),
    baseGradInput: (out, dH, n, alpha, beta) => {
      baseGradInput(out as T, dH as T, w, n, alpha, beta);
    },
    delta: (a) => {
      const d = deltaInto(
        alloc(w.data, w.dIn * w.dOut),
        a.down.data as T,
        a.up.data as T,
        a.scaling,
        w.dIn,
        w.dOut,
        a.r,
        w.layout,
      );
      // a packed weight gets its delta packed the same way, so W ± ΔW stays elementwise (padding: 0 ± 0)
      return w.packed ? packPanels(new Float32Array(w.data.length), d, w.dIn, w.dOut, false) : d;
    },
    columnNorms: (v) => columnNorms(v, w),
  };
}

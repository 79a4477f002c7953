// The CASES table (shapes × adapters × variants × layouts × dtypes) shared by the layer suites, and a float64
// reference of LoraLinear's forward with per-element error bounds (STYLE.md §6.3) capped by PEFT's tolerances.

import { createRng, type FloatArray, LoraLinear, type Matrix, type WeightLayout } from "../../src/index.js";
import { gemmReference } from "../../src/kernels/reference.js";
import { U_F32, U_F64 } from "../helpers/close.js";

export interface AdapterSpec {
  name: string;
  r: number;
  alpha: number;
  scaling?: "standard" | "rslora";
  useDora?: boolean;
}

export interface Case {
  name: string;
  n: number;
  dIn: number;
  dOut: number;
  layout: WeightLayout;
  dtype: "float32" | "float64";
  bias: boolean;
  adapters: AdapterSpec[];
}

const SHAPES: [number, number, number][] = [
  [0, 3, 2],
  [2, 0, 3],
  [3, 4, 0],
  [1, 1, 1],
  [3, 5, 2],
  [5, 2, 3],
  [4, 9, 17],
  [7, 17, 5],
];
const ADAPTER_SETS: AdapterSpec[][] = [
  [{ name: "a", r: 1, alpha: 2 }],
  [{ name: "rs", r: 2, alpha: 4, scaling: "rslora" }],
  [
    { name: "a", r: 2, alpha: 3 },
    { name: "b", r: 8, alpha: 8 },
  ],
  [{ name: "d", r: 2, alpha: 4, useDora: true }],
  [
    { name: "a", r: 1, alpha: 1 },
    { name: "d", r: 3, alpha: 6, useDora: true },
  ],
];

function build(): Case[] {
  const out: Case[] = [];
  let k = 0;
  for (const [n, dIn, dOut] of SHAPES) {
    for (const adapters of ADAPTER_SETS) {
      // DoRA divides by the column norm, which is 0 for an empty input dimension
      if (dIn === 0 && adapters.some((a) => a.useDora)) continue;
      k++;
      const layout: WeightLayout = k % 2 === 0 ? "out_in" : "in_out";
      const bias = k % 3 !== 0;
      for (const dtype of ["float64", "float32"] as const) {
        const tag = adapters.map((a) => `${a.name}${a.useDora ? "(dora)" : ""}:r${a.r}`).join("+");
        out.push({
          name: `${dtype} n${n} ${dIn}→${dOut} ${layout}${bias ? " bias" : ""} ${tag}`,
          n,
          dIn,
          dOut,
          layout,
          dtype,
          bias,
          adapters,
        });
      }
    }
  }
  return out;
}

/** Every case; names are unique. */
export const CASES: Case[] = build();
/** Cases whose adapters are all plain LoRA (mixed batches). */
export const PLAIN_CASES: Case[] = CASES.filter((c) => c.adapters.every((a) => !a.useDora));

export function randomArray(dtype: "float32" | "float64", len: number, seed: number, scale = 1): FloatArray {
  const rng = createRng(seed);
  const a = dtype === "float32" ? new Float32Array(len) : new Float64Array(len);
  for (let i = 0; i < len; i++) a[i] = (2 * rng.uniform() - 1) * scale;
  return a;
}

export function matrix(dtype: "float32" | "float64", rows: number, cols: number, seed: number, scale = 1): Matrix {
  return { data: randomArray(dtype, rows * cols, seed, scale), rows, cols };
}

/** A layer for a case with random weight, bias and adapter matrices (non-zero deltas), all adapters active. */
export function makeLayer(c: Case, seed = 1): LoraLinear {
  const [rows, cols] = c.layout === "in_out" ? [c.dIn, c.dOut] : [c.dOut, c.dIn];
  const layer = new LoraLinear({
    weight: matrix(c.dtype, rows, cols, seed),
    layout: c.layout,
    ...(c.bias ? { bias: randomArray(c.dtype, c.dOut, seed + 1) } : {}),
  });
  c.adapters.forEach((a, i) => {
    layer.addAdapter(a.name, {
      down: matrix(c.dtype, c.dIn, a.r, seed + 10 + i),
      up: matrix(c.dtype, a.r, c.dOut, seed + 20 + i, 0.5),
      alpha: a.alpha,
      ...(a.scaling ? { scaling: a.scaling } : {}),
      ...(a.useDora
        ? { useDora: true, magnitude: randomArray(c.dtype, c.dOut, seed + 30 + i, 1).map((v) => 1 + v / 2) }
        : {}),
    });
  });
  layer.setActive(c.adapters.map((a) => a.name));
  return layer;
}

export function makeInput(c: Case, seed = 99): Matrix {
  return matrix(c.dtype, c.n, c.dIn, seed, 2);
}

/** Float64 reference h and an elementwise error bound for the case's dtype, capped by `peft` (atol = rtol). */
export function reference(
  layer: LoraLinear,
  x: Matrix,
  adapters: readonly string[],
  peft = 1e-4,
  /** DoRA column norms to use instead of computing them (gradient checks hold the norm fixed, as PEFT does). */
  frozenNorms?: Map<string, Float64Array>,
) {
  const norms = new Map<string, Float64Array>();
  const { dIn, dOut } = layer;
  const n = x.rows;
  const trans = layer.layout === "out_in";
  const w = layer.weight.data;
  const base = new Float64Array(n * dOut);
  const gBase = new Float64Array(n * dOut);
  gemmReference(base, gBase, x.data, w, n, dIn, dOut, false, trans);
  const h = new Float64Array(n * dOut);
  const gauge = new Float64Array(n * dOut); // Σ of |terms| that enter each h element, scaled by their depth
  const b = layer.bias;
  for (let i = 0; i < n * dOut; i++) {
    h[i] = base[i]! + (b ? b[i % dOut]! : 0);
    gauge[i] = (dIn + 2) * gBase[i]! + (b ? Math.abs(b[i % dOut]!) : 0);
  }
  for (const name of adapters) {
    const a = layer.adapter(name);
    const r = a.r;
    const s = a.scaling;
    const t = new Float64Array(n * r);
    const tAbs = new Float64Array(n * r);
    gemmReference(t, tAbs, x.data, a.down.data, n, dIn, r);
    const low = new Float64Array(n * dOut);
    const gLow = new Float64Array(n * dOut);
    gemmReference(low, null, t, a.up.data, n, r, dOut);
    gemmReference(gLow, null, tAbs, Float64Array.from(a.up.data, Math.abs), n, r, dOut);
    if (!a.useDora) {
      for (let i = 0; i < n * dOut; i++) {
        h[i] = h[i]! + s * low[i]!;
        gauge[i] = gauge[i]! + Math.abs(s) * (dIn + r + 2) * gLow[i]!;
      }
      continue;
    }
    // DoRA (PEFT): h ← g·(h − bias) + bias + g·s·x·down·up, g = m / ‖W + s·down·up‖_col (W with nothing merged)
    const delta = new Float64Array(dIn * dOut);
    gemmReference(delta, null, a.down.data, a.up.data, dIn, r, dOut);
    const norm = new Float64Array(dOut);
    for (let j = 0; j < dOut; j++) {
      let ss = 0;
      for (let p = 0; p < dIn; p++) {
        const wv = trans ? w[j * dIn + p]! : w[p * dOut + j]!;
        const v = wv + s * delta[p * dOut + j]!;
        ss += v * v;
      }
      norm[j] = Math.sqrt(ss);
    }
    const fixed = frozenNorms?.get(name) ?? norm;
    norms.set(name, fixed);
    const g = fixed.map((v, j) => a.magnitude![j]! / v);
    for (let i = 0; i < n * dOut; i++) {
      const gj = g[i % dOut]!;
      const bj = b ? b[i % dOut]! : 0;
      h[i] = gj * (h[i]! - bj) + bj + gj * s * low[i]!;
      // the norm's relative error (≈ (dIn + r + 2)·u) multiplies g·|x·V|
      gauge[i] =
        (1 + 2 * Math.abs(gj)) * gauge[i]! +
        (dIn + r + 4) * ((1 + 2 * Math.abs(gj)) * gBase[i]! + 2 * Math.abs(gj * s) * gLow[i]!);
    }
  }
  const u = layer.dtype === "float32" ? U_F32 : U_F64;
  const bound = new Float64Array(n * dOut);
  for (let i = 0; i < n * dOut; i++) {
    const derived = 2 * u * gauge[i]! + (adapters.length + 2) * u * Math.abs(h[i]!);
    bound[i] = Math.min(derived, peft + peft * Math.abs(h[i]!));
  }
  return { h, bound, norms };
}

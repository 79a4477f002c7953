// The real GPT-2 adapter (fan_in_fan_out, r = 8, lora_alpha = 32) against golden ΔW values made independently by
// scripts/make-peft-golden.py (numpy, float64). Skipped when ../shared/fixtures/real is not present.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { baseIsTransposed } from "../../src/io/peft-keys.js";
import { gemmReference, loraReference } from "../../src/kernels/reference.js";
import { gemm } from "../../src/kernels/select.js";
import { lowRankForward } from "../../src/lora/forward.js";
import { loadPeftAdapterDir } from "../../src/node/adapter-files.js";
import { mergeModuleInto } from "../../src/node/merge-tensor.js";
import { expectClose, gemmBound, loraBound, U_F32 } from "../helpers/close.js";
import { REAL_FIXTURES, REPO_ROOT } from "./shared.js";
import { randomArray, rng } from "./synthetic.js";

interface GoldenModule {
  module: string;
  dIn: number;
  dOut: number;
  r: number;
  scaling: number;
  sum: number;
  sumSq: number;
  sumAbs: number;
  samples: { i: number; j: number; value: number }[];
}
const golden = JSON.parse(readFileSync(join(REPO_ROOT, "test/golden/peft-gpt2.json"), "utf8")) as {
  adapterSha256: string;
  modules: GoldenModule[];
};

describe.skipIf(REAL_FIXTURES === null)("real GPT-2 PEFT adapter", () => {
  const dir = join(REAL_FIXTURES ?? "", "gpt2-tigrinya-lora");
  const adapter = loadPeftAdapter({
    config: readFileSync(join(dir, "adapter_config.json"), "utf8"),
    weights: readFileSync(join(dir, "adapter_model.safetensors")),
  });

  it("the golden values were made from this very file", () => {
    const sha = createHash("sha256")
      .update(readFileSync(join(dir, "adapter_model.safetensors")))
      .digest("hex");
    expect(sha).toBe(golden.adapterSha256);
  });

  it("loads 36 modules with r = 8, scaling 4, fan_in_fan_out, F32, no warnings", () => {
    expect(adapter.modules).toHaveLength(36);
    expect(adapter.warnings).toEqual([]);
    expect(adapter.modulesToSave.size).toBe(0);
    for (const m of adapter.modules) {
      expect(m).toMatchObject({ r: 8, alpha: 32, scaling: 4, fanInFanOut: true, dtype: "F32", kind: "linear" });
      // attn.c_attn [768 → 2304], attn.c_proj [768 → 768], mlp.c_proj [3072 → 768]
      const dims = m.modulePath.endsWith("attn.c_attn")
        ? [768, 2304]
        : m.modulePath.includes("mlp")
          ? [3072, 768]
          : [768, 768];
      expect([m.down.rows, m.down.cols, m.up.rows, m.up.cols]).toEqual([dims[0], 8, 8, dims[1]]);
    }
    const cAttn = adapter.modules.find((m) => m.modulePath === "transformer.h.0.attn.c_attn")!;
    expect([cAttn.up.rows, cAttn.up.cols]).toEqual([8, 2304]);
    expect(new Set(adapter.modules.map((m) => m.modulePath))).toEqual(new Set(golden.modules.map((g) => g.module)));
  });

  it("every module: sum and sum of squares of ΔW from Gram matrices match the golden to float64 rounding", () => {
    // Σ ΔW = s·Σ_p colsum(down)_p·rowsum(up)_p;  Σ ΔW² = s²·Σ_{p,q} (downᵀdown)_{pq}·(up·upᵀ)_{pq}
    for (const g of golden.modules) {
      const m = adapter.modules.find((x) => x.modulePath === g.module)!;
      const { r } = g;
      const gd = gemm(
        new Float64Array(r * r),
        Float64Array.from(m.down.data),
        Float64Array.from(m.down.data),
        r,
        g.dIn,
        r,
        true,
        false,
        1,
        0,
      );
      const gu = gemm(
        new Float64Array(r * r),
        Float64Array.from(m.up.data),
        Float64Array.from(m.up.data),
        r,
        g.dOut,
        r,
        false,
        true,
        1,
        0,
      );
      let sum = 0;
      let sumSq = 0;
      for (let p = 0; p < r; p++) {
        let cd = 0;
        let ru = 0;
        for (let i = 0; i < g.dIn; i++) cd += m.down.data[i * r + p]!;
        for (let j = 0; j < g.dOut; j++) ru += m.up.data[p * g.dOut + j]!;
        sum += cd * ru;
        for (let q = 0; q < r; q++) sumSq += gd[p * r + q]! * gu[p * r + q]!;
      }
      sum *= m.scaling;
      sumSq *= m.scaling * m.scaling;
      expect(Math.abs(sum - g.sum)).toBeLessThanOrEqual(1e-9 * g.sumAbs);
      expect(Math.abs(sumSq - g.sumSq)).toBeLessThanOrEqual(1e-12 * g.sumSq);
    }
  });

  it("six modules: the full ΔW in float64 matches the golden Σ|ΔW| and samples to 1e-15", () => {
    for (const g of golden.modules.filter((_, k) => k % 6 === 0)) {
      const m = adapter.modules.find((x) => x.modulePath === g.module)!;
      // float64 product of the float32 factors (exact products, float64 sums)
      const dw = gemm(
        new Float64Array(g.dIn * g.dOut),
        Float64Array.from(m.down.data),
        Float64Array.from(m.up.data),
        g.dIn,
        g.r,
        g.dOut,
        false,
        false,
        m.scaling,
        0,
      );
      let sumAbs = 0;
      for (let k = 0; k < dw.length; k++) sumAbs += Math.abs(dw[k]!);
      expect(Math.abs(sumAbs - g.sumAbs)).toBeLessThanOrEqual(dw.length * 2 ** -53 * g.sumAbs);
      for (const s of g.samples) expect(Math.abs(dw[s.i * g.dOut + s.j]! - s.value)).toBeLessThan(1e-15);
    }
  });

  it("ΔW computed by the float32 gemm kernel (as merge does) is within its error bound of the golden samples", () => {
    for (const g of golden.modules.filter((_, k) => k % 6 === 3)) {
      const m = adapter.modules.find((x) => x.modulePath === g.module)!;
      const dw = gemm(
        new Float32Array(g.dIn * g.dOut),
        m.down.data,
        m.up.data,
        g.dIn,
        g.r,
        g.dOut,
        false,
        false,
        m.scaling,
        0,
      );
      for (const s of g.samples) {
        // gauge Σ_p |down[i,p]|·|up[p,j]| of this one entry, from the float64 reference on row i / column j
        const gauge = new Float64Array(1);
        const row = m.down.data.subarray(s.i * g.r, (s.i + 1) * g.r);
        const col = Float32Array.from({ length: g.r }, (_, p) => m.up.data[p * g.dOut + s.j]!);
        gemmReference(new Float64Array(1), gauge, row, col, 1, g.r, 1);
        const k = s.i * g.dOut + s.j;
        const bound = gemmBound(U_F32, g.r + 1, [gauge[0]! * m.scaling], [dw[k]!])[0]!;
        expect(Math.abs(dw[k]! - s.value)).toBeLessThanOrEqual(bound);
      }
    }
  });

  it("merged c_attn (Conv1D [768, 2304]) gives the unmerged forward x·W + s·(x·down)·up within the float32 bound", () => {
    const m = adapter.modules.find((x) => x.modulePath === "transformer.h.3.attn.c_attn")!;
    const [dIn, dOut, n] = [768, 2304, 4];
    const next = rng(5);
    const W = randomArray(dIn * dOut, next, 0.1);
    const merged = mergeModuleInto(Float32Array.from(W), m, baseIsTransposed("linear", true));
    const x = { data: randomArray(n * dIn, next), rows: n, cols: dIn };
    const zero = {
      down: { data: new Float32Array(dIn), rows: dIn, cols: 1 },
      up: { data: new Float32Array(dOut), rows: 1, cols: dOut },
      scaling: 0,
    };
    const hMerged = lowRankForward(x, { data: merged, rows: dIn, cols: dOut }, zero);
    const hUnmerged = lowRankForward(x, { data: W, rows: dIn, cols: dOut }, m);
    const ref = loraReference(x.data, W, m.down.data, m.up.data, m.scaling, n, dIn, dOut, m.r);
    const bound = loraBound(U_F32, dIn, m.r, m.scaling, ref.gaugeBase, ref.gaugeLowRank, ref.h);
    expectClose(hMerged.data, ref.h, { bound, shape: [n, dOut] });
    expectClose(hUnmerged.data, ref.h, { bound, shape: [n, dOut] });
  });

  it("loadPeftAdapterDir reads the same adapter from its folder", async () => {
    const fromDir = await loadPeftAdapterDir(dir);
    expect(fromDir.modules.map((m) => m.modulePath)).toEqual(adapter.modules.map((m) => m.modulePath));
    const [a, b] = [fromDir.modules[5]!.up.data, adapter.modules[5]!.up.data];
    expect(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
    ).toBe(true);
  });
});

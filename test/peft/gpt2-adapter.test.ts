// The real GPT-2 adapter (fan_in_fan_out, r = 8, lora_alpha = 32) against golden ΔW values made independently by
// scripts/make-peft-golden.py (numpy, float64). Skipped when ../shared/fixtures/real is not present.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { gemmReference } from "../../src/kernels/reference.js";
import { gemm } from "../../src/kernels/select.js";
import { loadPeftAdapterDir } from "../../src/node/adapter-files.js";
import { gemmBound, U_F32 } from "../helpers/close.js";
import { REAL_FIXTURES, REPO_ROOT } from "./shared.js";

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
  modules: GoldenModule[];
};

describe.skipIf(REAL_FIXTURES === null)("real GPT-2 PEFT adapter", () => {
  const dir = join(REAL_FIXTURES ?? "", "gpt2-tigrinya-lora");
  const adapter = loadPeftAdapter({
    config: readFileSync(join(dir, "adapter_config.json"), "utf8"),
    weights: readFileSync(join(dir, "adapter_model.safetensors")),
  });

  it("loads 36 modules with r = 8, scaling 4, fan_in_fan_out, F32, no warnings", () => {
    expect(adapter.modules).toHaveLength(36);
    expect(adapter.warnings).toEqual([]);
    expect(adapter.modulesToSave.size).toBe(0);
    for (const m of adapter.modules) {
      expect(m).toMatchObject({ r: 8, alpha: 32, scaling: 4, fanInFanOut: true, dtype: "F32", kind: "linear" });
      // attn.c_attn [768 → 2304], attn.c_proj [768 → 768], mlp.c_proj [3072 → 768]
      const dims = m.modulePath.endsWith("attn.c_attn") ? [768, 2304] : m.modulePath.includes("mlp") ? [3072, 768] : [768, 768];
      expect([m.down.rows, m.down.cols, m.up.rows, m.up.cols]).toEqual([dims[0], 8, 8, dims[1]]);
    }
    const cAttn = adapter.modules.find((m) => m.modulePath === "transformer.h.0.attn.c_attn")!;
    expect([cAttn.up.rows, cAttn.up.cols]).toEqual([8, 2304]);
    expect(new Set(adapter.modules.map((m) => m.modulePath))).toEqual(new Set(golden.modules.map((g) => g.module)));
  });

  it("ΔW = s·down·up in float64 matches the numpy golden sums and samples to 1e-12", () => {
    for (const g of golden.modules) {
      const m = adapter.modules.find((x) => x.modulePath === g.module)!;
      expect([m.down.rows, m.up.cols, m.r, m.scaling]).toEqual([g.dIn, g.dOut, g.r, g.scaling]);
      const dw = gemmReference(new Float64Array(g.dIn * g.dOut), null, m.down.data, m.up.data, g.dIn, g.r, g.dOut);
      let sum = 0;
      let sumSq = 0;
      let sumAbs = 0;
      for (let k = 0; k < dw.length; k++) {
        const v = m.scaling * dw[k]!;
        sum += v;
        sumSq += v * v;
        sumAbs += Math.abs(v);
      }
      // summation order differs from numpy's pairwise sums: allow n·u64 relative to Σ|v|
      const tol = dw.length * 2 ** -53 * sumAbs;
      expect(Math.abs(sum - g.sum)).toBeLessThanOrEqual(tol);
      expect(Math.abs(sumSq - g.sumSq)).toBeLessThanOrEqual(dw.length * 2 ** -52 * g.sumSq);
      expect(Math.abs(sumAbs - g.sumAbs)).toBeLessThanOrEqual(tol);
      for (const s of g.samples) expect(Math.abs(m.scaling * dw[s.i * g.dOut + s.j]! - s.value)).toBeLessThan(1e-15);
    }
  });

  it("ΔW computed by the float32 gemm kernel (as merge does) is within its error bound of the golden samples", () => {
    for (const g of golden.modules.slice(0, 6)) {
      const m = adapter.modules.find((x) => x.modulePath === g.module)!;
      const dw = gemm(new Float32Array(g.dIn * g.dOut), m.down.data, m.up.data, g.dIn, g.r, g.dOut, false, false, m.scaling, 0);
      const gauge = new Float64Array(g.dIn * g.dOut);
      gemmReference(new Float64Array(g.dIn * g.dOut), gauge, m.down.data, m.up.data, g.dIn, g.r, g.dOut);
      const bound = gemmBound(U_F32, g.r + 1, gauge.map((v) => v * m.scaling), dw);
      for (const s of g.samples) {
        const k = s.i * g.dOut + s.j;
        expect(Math.abs(dw[k]! - s.value)).toBeLessThanOrEqual(bound[k]!);
      }
    }
  });

  it("loadPeftAdapterDir reads the same adapter from its folder", async () => {
    const fromDir = await loadPeftAdapterDir(dir);
    expect(fromDir.modules.map((m) => m.modulePath)).toEqual(adapter.modules.map((m) => m.modulePath));
    expect(fromDir.modules[5]!.up.data).toEqual(adapter.modules[5]!.up.data);
  });
});

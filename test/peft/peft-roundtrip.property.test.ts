// Property: for random PEFT adapters (shapes, ranks, dtypes, DoRA, values), save(load(file)) reproduces the file
// byte for byte and loading it again gives the same modules.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { savePeftAdapter } from "../../src/io/peft-save.js";
import { serializeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { SEED } from "../helpers/seed.js";

const value = fc.float({ noNaN: true, min: Math.fround(-8), max: Math.fround(8) });

const moduleArb = fc
  .record({
    dIn: fc.integer({ min: 1, max: 6 }),
    dOut: fc.integer({ min: 1, max: 6 }),
    r: fc.integer({ min: 1, max: 3 }),
  })
  .chain(({ dIn, dOut, r }) =>
    fc.record({
      dIn: fc.constant(dIn),
      dOut: fc.constant(dOut),
      r: fc.constant(r),
      a: fc.array(value, { minLength: r * dIn, maxLength: r * dIn }),
      b: fc.array(value, { minLength: dOut * r, maxLength: dOut * r }),
      m: fc.array(value, { minLength: dOut, maxLength: dOut }),
    }),
  );

const caseArb = fc.record({
  modules: fc.array(moduleArb, { minLength: 1, maxLength: 3 }),
  dtype: fc.constantFrom("F32" as const, "F16" as const, "BF16" as const),
  dora: fc.boolean(),
  rslora: fc.boolean(),
  alpha: fc.integer({ min: 1, max: 64 }),
});

describe("PEFT save/load round trip (property)", () => {
  it("save(load(file)) is the file, byte for byte", () => {
    fc.assert(
      fc.property(caseArb, ({ modules, dtype, dora, rslora, alpha }) => {
        const t: Record<string, TensorToWrite> = {};
        const rankPattern: Record<string, number> = {};
        modules.forEach((m, k) => {
          const p = `base_model.model.model.layers.${k}.proj`;
          t[`${p}.lora_A.weight`] = { dtype, shape: [m.r, m.dIn], data: Float32Array.from(m.a) };
          t[`${p}.lora_B.weight`] = { dtype, shape: [m.dOut, m.r], data: Float32Array.from(m.b) };
          if (dora) t[`${p}.lora_magnitude_vector`] = { dtype, shape: [m.dOut], data: Float32Array.from(m.m) };
          rankPattern[`layers.${k}.proj`] = m.r;
        });
        const config = {
          peft_type: "LORA",
          r: 3,
          lora_alpha: alpha,
          use_dora: dora,
          use_rslora: rslora,
          rank_pattern: rankPattern,
        };
        const file = serializeSafetensors(t, { format: "pt" });
        const a = loadPeftAdapter({ config, weights: file });
        const saved = savePeftAdapter(a.modules, a.config);
        expect(Buffer.from(saved.weights).equals(Buffer.from(file))).toBe(true);
        const b = loadPeftAdapter({ config: saved.configJson, weights: saved.weights });
        expect(b.modules.map((m) => [m.modulePath, m.r, m.alpha, m.scaling, m.dtype])).toEqual(
          a.modules.map((m) => [m.modulePath, m.r, m.alpha, m.scaling, m.dtype]),
        );
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});

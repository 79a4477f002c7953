// The PEFT golden set (shared/fixtures/peft-golden, made by Hugging Face PEFT 0.21.0): for each of its 15 variants,
// every LoRA module's forward (a LoraLinear from the base file's weight and bias, or the adapter's saved bias, plus
// the loaded adapter, on M.x) must equal PEFT's M.y, and mergeAdapterIntoModel must give PEFT's merge_and_unload
// weights tensor by tensor. Tolerances: float32 variants ≤ 1e-5 (forward) and ≤ 1e-6 (merge) relative to the
// tensor's largest value; bfloat16 variants ≤ 2e-2 (PEFT computed in bfloat16) and one bfloat16 step when merged.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mergeCommand } from "../../cli/merge.js";
import type { PeftModuleAdapter } from "../../src/io/peft-adapter.js";
import { baseTensorCandidates } from "../../src/io/peft-keys.js";
import { loraLinearForModule } from "../../src/io/peft-layer.js";
import type { ParsedSafetensors } from "../../src/io/safetensors.js";
import { loadPeftAdapterDir } from "../../src/node/adapter-files.js";
import { mergeAdapterIntoModel } from "../../src/node/merge.js";
import { GOLDEN_DIR, maxBf16Ulps, readSafetensors, relativeError, VARIANTS, variantPaths } from "./golden.js";

const IO_PREFIX = "base_model.model.";

async function expectMergedEqualsPeft(out: string, merged: string): Promise<void> {
  const ours = readSafetensors(out);
  const peft = readSafetensors(merged);
  expect(ours.names().sort()).toEqual(peft.names().sort());
  for (const name of peft.names()) {
    const a = ours.info(name);
    const e = peft.info(name);
    expect([a.dtype, a.shape], name).toEqual([e.dtype, e.shape]);
    if (e.dtype === "BF16") {
      expect(maxBf16Ulps(ours.bytes(name), peft.bytes(name)), `${name}: bfloat16 steps`).toBeLessThanOrEqual(1);
    } else {
      const err = relativeError(ours.toFloat32(name), peft.toFloat32(name));
      expect(err, `${name}: max |ours − PEFT| / max |PEFT|`).toBeLessThanOrEqual(1e-6);
    }
  }
}

function baseTensor(base: ParsedSafetensors, modulePath: string, suffix: "weight" | "bias"): string | undefined {
  return baseTensorCandidates(modulePath)
    .map((c) => c.replace(/weight$/, suffix))
    .find((c) => base.has(c));
}

/** The modules io.safetensors has an input and output for (PEFT's names without the prefix). */
function ioModules(io: ParsedSafetensors): string[] {
  return io
    .names()
    .filter((n) => n.endsWith(".x"))
    .map((n) => n.slice(IO_PREFIX.length, -2));
}

function forwardModule(base: ParsedSafetensors, m: PeftModuleAdapter, x: Float32Array, n: number): Float32Array {
  const wName = baseTensor(base, m.modulePath, "weight");
  expect(wName, `base tensor of ${m.modulePath}`).toBeDefined();
  const bName = baseTensor(base, m.modulePath, "bias");
  const layer = loraLinearForModule(m, {
    weight: base.toFloat32(wName!),
    shape: base.info(wName!).shape,
    bias: bName === undefined ? undefined : base.toFloat32(bName),
  });
  return layer.forward({ data: x, rows: n, cols: m.down.rows }).data as Float32Array;
}

const tmp = mkdtempSync(join(tmpdir(), "lorakit-golden-peft-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(GOLDEN_DIR === null)("PEFT 0.21 golden set (shared/fixtures/peft-golden)", () => {
  it("has the 15 variants", () => {
    for (const [variant, base] of VARIANTS) {
      const p = variantPaths(variant, base);
      expect(() => readFileSync(p.io, { flag: "r" }).length, variant).not.toThrow();
    }
  });

  describe.each(VARIANTS)("%s", (variant, baseKind) => {
    const p = variantPaths(variant, baseKind);
    const bf16 = baseKind === "llama-bf16";

    it("every LoRA module's forward equals PEFT's M.y", async () => {
      const adapter = await loadPeftAdapterDir(p.adapterDir);
      const base = readSafetensors(p.baseModel);
      const io = readSafetensors(p.io);
      const names = ioModules(io);
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) {
        const m = adapter.modules.find((x) => x.modulePath === name);
        expect(m, `adapter module ${name}`).toBeDefined();
        const x = io.toFloat32(`${IO_PREFIX}${name}.x`);
        const y = io.toFloat32(`${IO_PREFIX}${name}.y`);
        const n = io.info(`${IO_PREFIX}${name}.x`).shape[0]!;
        const h = forwardModule(base, m!, x, n);
        const err = relativeError(h, y);
        expect(err, `${name}: max |h − y| / max |y|`).toBeLessThanOrEqual(bf16 ? 2e-2 : 1e-5);
      }
    });

    it("mergeAdapterIntoModel equals PEFT's merge_and_unload for every tensor", async () => {
      const adapter = await loadPeftAdapterDir(p.adapterDir);
      const out = join(tmp, `${variant}.safetensors`);
      await mergeAdapterIntoModel(p.baseModel, adapter, { out });
      await expectMergedEqualsPeft(out, p.merged);
    });

    it("lorakit merge equals PEFT's merge_and_unload too", async () => {
      const out = join(tmp, `${variant}-cli.safetensors`);
      const io = { stdout: () => {}, stderr: () => {}, isTTY: false };
      const args = ["--base", p.baseModel, "--adapter", p.adapterDir, "--out", out, "--quiet"];
      expect(await mergeCommand.run(args, io)).toBe(0);
      await expectMergedEqualsPeft(out, p.merged);
    });
  });
});

// mergeAdapterIntoGguf against lorakit's safetensors merge: merging into a GGUF base must give, tensor for tensor,
// the GGUF of the safetensors-merged model (permutation undone and redone exactly, DoRA and embeddings included);
// quantized bases stay quantized; errors leave no file.

import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseGguf } from "../../src/io/gguf.js";
import { loadAdapter } from "../../src/node/adapter-files.js";
import { convertModelToGguf } from "../../src/node/gguf-file.js";
import { mergeAdapterIntoGguf } from "../../src/node/gguf-merge.js";
import { mergeAdapterIntoModel } from "../../src/node/merge.js";
import { GOLDEN, tmpFile } from "./helpers.js";

async function baseGguf(kind: string, dtype: "F32" | "Q8_0"): Promise<string> {
  const out = tmpFile(`merge-base-${kind}-${dtype}.gguf`);
  if (!existsSync(out)) await convertModelToGguf(join(GOLDEN!, "base", kind), out, { dtype });
  return out;
}

async function viaSafetensors(kind: string, variant: string, dtype: "F32" | "Q8_0"): Promise<string> {
  const dir = tmpFile(`merge-ref-${variant}-${dtype}`);
  mkdirSync(dir, { recursive: true });
  const adapter = await loadAdapter(join(GOLDEN!, variant, "adapter"));
  await mergeAdapterIntoModel(join(GOLDEN!, "base", kind, "model.safetensors"), adapter, {
    out: join(dir, "model.safetensors"),
  });
  copyFileSync(join(GOLDEN!, "base", kind, "config.json"), join(dir, "config.json"));
  await convertModelToGguf(dir, join(dir, "m.gguf"), { dtype });
  return join(dir, "m.gguf");
}

describe.skipIf(GOLDEN === null)("mergeAdapterIntoGguf", () => {
  for (const [variant, kind] of [
    ["peft-llama-rslora-all", "llama"],
    ["lk-llama-basic", "llama"],
    ["lk-llama-dora", "llama"],
    ["peft-gpt2-conv1d", "gpt2"],
    ["peft-gpt2-bias", "gpt2"],
    ["peft-llama-embed-mts", "llama"],
  ] as const) {
    it(`${variant}: equals the GGUF of the safetensors merge, tensor for tensor`, async () => {
      const out = tmpFile(`merged-${variant}.gguf`);
      const s = await mergeAdapterIntoGguf(
        await baseGguf(kind, "F32"),
        await loadAdapter(join(GOLDEN!, variant, "adapter")),
        { out },
      );
      expect(s.merged.size).toBeGreaterThan(0);
      const ours = parseGguf(new Uint8Array(readFileSync(out)));
      const ref = parseGguf(new Uint8Array(readFileSync(await viaSafetensors(kind, variant, "F32"))));
      expect(ours.names()).toEqual(ref.names());
      for (const n of ref.names()) {
        const a = ours.toFloat32(n);
        const b = ref.toFloat32(n);
        for (let i = 0; i < a.length; i++)
          if (Math.abs(a[i]! - b[i]!) > 2 ** -22 * Math.max(1, Math.abs(b[i]!)))
            throw new Error(`${n}[${i}]: ${a[i]} vs ${b[i]}`);
      }
      const base = parseGguf(new Uint8Array(readFileSync(await baseGguf(kind, "F32"))));
      const changed = ref.names().filter((n) => !Buffer.from(ours.bytes(n)).equals(Buffer.from(base.bytes(n))));
      expect(changed.length).toBe(s.merged.size + s.replaced.length);
    });
  }

  it("a Q8_0 base stays Q8_0, within two quantization steps of the float32 merge", async () => {
    const out = tmpFile("merged-q8.gguf");
    const adapter = await loadAdapter(join(GOLDEN!, "peft-llama-basic", "adapter"));
    await mergeAdapterIntoGguf(await baseGguf("llama", "Q8_0"), adapter, { out });
    const q = parseGguf(new Uint8Array(readFileSync(out)));
    const f = parseGguf(new Uint8Array(readFileSync(await viaSafetensors("llama", "peft-llama-basic", "F32"))));
    const name = "blk.0.attn_q.weight";
    expect(q.info(name).type.name).toBe("Q8_0");
    const a = q.toFloat32(name);
    const b = f.toFloat32(name);
    let amax = 0;
    let err = 0;
    for (let i = 0; i < b.length; i++) {
      amax = Math.max(amax, Math.abs(b[i]!));
      err = Math.max(err, Math.abs(a[i]! - b[i]!));
    }
    expect(err).toBeLessThanOrEqual((2 * amax) / 127);
    expect(err).toBeGreaterThan(0);
  });

  it("refuses an adapter for another model before writing anything", async () => {
    const out = tmpFile("merged-wrong.gguf");
    const gpt2 = await loadAdapter(join(GOLDEN!, "peft-gpt2-conv1d", "adapter"));
    await expect(mergeAdapterIntoGguf(await baseGguf("llama", "F32"), gpt2, { out })).rejects.toThrow(
      expect.objectContaining({
        code: "missing_tensor",
        message: expect.stringMatching(/have no tensor in the GGUF base.*nothing was written/),
      }),
    );
    const llama = await loadAdapter(join(GOLDEN!, "peft-llama-basic", "adapter"));
    const wrong = {
      modules: llama.modules.map((m) => ({
        ...m,
        modulePath: m.modulePath.replace("self_attn.q_proj", "mlp.gate_proj"),
      })),
    };
    await expect(mergeAdapterIntoGguf(await baseGguf("llama", "F32"), wrong, { out })).rejects.toThrow(
      expect.objectContaining({
        code: "shape_mismatch",
        message: expect.stringMatching(/blk\.0\.ffn_gate\.weight has ne \[64, 128\], expected \[64, 64\]/),
      }),
    );
    expect(existsSync(out)).toBe(false);
  });
});

// adapter_model.bin from the PEFT golden set (torch.save of the same state dict as adapter_model.safetensors, zip
// and legacy formats): every tensor must equal the safetensors one bit for bit, and loading the adapter from the
// .bin must give the same adapter as loading it from the .safetensors.

import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPeftAdapter, type PeftAdapter, parseSafetensors } from "../../src/index.js";
import { parseTorchFile, readTorchFile } from "../../src/io/torch-file.js";
import { loadAdapter, loadPeftAdapterDir } from "../../src/node/adapter-files.js";
import { mergeAdapterIntoModel } from "../../src/node/merge.js";
import { BIN_VARIANTS, PEFT_GOLDEN } from "./golden.js";

function sameAdapter(a: PeftAdapter, b: PeftAdapter): void {
  expect(a.modules.map((m) => m.modulePath)).toEqual(b.modules.map((m) => m.modulePath));
  for (let i = 0; i < a.modules.length; i++) {
    const x = a.modules[i]!;
    const y = b.modules[i]!;
    expect([x.r, x.alpha, x.scaling, x.fanInFanOut, x.dtype, x.kind]).toEqual([
      y.r,
      y.alpha,
      y.scaling,
      y.fanInFanOut,
      y.dtype,
      y.kind,
    ]);
    expect(Buffer.from(x.down.data.buffer).equals(Buffer.from(y.down.data.buffer))).toBe(true);
    expect(Buffer.from(x.up.data.buffer).equals(Buffer.from(y.up.data.buffer))).toBe(true);
    expect(x.magnitude === undefined).toBe(y.magnitude === undefined);
    if (x.magnitude) expect(Buffer.from(x.magnitude.buffer).equals(Buffer.from(y.magnitude!.buffer))).toBe(true);
  }
  expect([...a.modulesToSave.keys()]).toEqual([...b.modulesToSave.keys()]);
}

describe.skipIf(PEFT_GOLDEN === null).each(BIN_VARIANTS)("%s adapter-bin (%s)", (variant, format) => {
  const dir = join(PEFT_GOLDEN ?? "", variant);
  const binPath = join(dir, "adapter-bin", "adapter_model.bin");

  it("every tensor equals the safetensors one bit for bit", async () => {
    const bin = new Uint8Array(await readFile(binPath));
    const st = parseSafetensors(await readFile(join(dir, "adapter", "adapter_model.safetensors")));
    const file = readTorchFile(bin);
    expect(file.format).toBe(format);
    expect([...file.tensors.keys()].sort()).toEqual(st.names().sort());
    for (const name of st.names()) {
      const t = file.tensors.get(name)!;
      const info = st.info(name);
      expect([t.dtype, t.shape]).toEqual([info.dtype, info.shape]);
      expect(Buffer.from(t.bytes).equals(Buffer.from(st.bytes(name)))).toBe(true);
    }
    // through the safetensors-shaped interface too
    const parsed = parseTorchFile(bin);
    for (const name of st.names()) expect(parsed.toFloat32(name)).toEqual(st.toFloat32(name));
  });

  it("loads the same adapter from the .bin as from the .safetensors (bytes, folder, file path)", async () => {
    const config = await readFile(join(dir, "adapter", "adapter_config.json"), "utf8");
    const ref = loadPeftAdapter({ config, weights: await readFile(join(dir, "adapter", "adapter_model.safetensors")) });
    sameAdapter(loadPeftAdapter({ config, weights: new Uint8Array(await readFile(binPath)) }), ref);
    const tmp = await mkdtemp(join(tmpdir(), "lorakit-bin-"));
    try {
      await copyFile(join(dir, "adapter", "adapter_config.json"), join(tmp, "adapter_config.json"));
      await copyFile(binPath, join(tmp, "adapter_model.bin"));
      sameAdapter(await loadPeftAdapterDir(tmp), ref);
      sameAdapter((await loadAdapter(tmp)) as PeftAdapter, ref);
      sameAdapter((await loadAdapter(join(tmp, "adapter_model.bin"))) as PeftAdapter, ref);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("merging the .bin adapter writes the same file as merging the .safetensors one", async () => {
    const kind = variant.includes("gpt2") ? "gpt2" : variant.includes("bf16") ? "llama-bf16" : "llama";
    const base = join(PEFT_GOLDEN ?? "", "base", kind, "model.safetensors");
    const tmp = await mkdtemp(join(tmpdir(), "lorakit-bin-merge-"));
    try {
      await copyFile(join(dir, "adapter", "adapter_config.json"), join(tmp, "adapter_config.json"));
      await copyFile(binPath, join(tmp, "adapter_model.bin"));
      const fromBin = await loadAdapter(tmp);
      const fromSt = await loadAdapter(join(dir, "adapter"));
      await mergeAdapterIntoModel(base, fromBin, { out: join(tmp, "bin.safetensors") });
      await mergeAdapterIntoModel(base, fromSt, { out: join(tmp, "st.safetensors") });
      const a = await readFile(join(tmp, "bin.safetensors"));
      expect(a.length).toBeGreaterThan(0);
      expect(a.equals(await readFile(join(tmp, "st.safetensors")))).toBe(true);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

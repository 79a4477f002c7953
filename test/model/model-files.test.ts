// loadModelDir: one file or an index with shards give the same model; folders that are not models are refused.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { randomModel, toSafetensors, writeModel } from "../../scripts/random-model.mjs";
import { parseSafetensors } from "../../src/io/safetensors.js";
import { CausalLM } from "../../src/model/model.js";
import { loadModelDir } from "../../src/node/model-files.js";
import { openSafetensors } from "../../src/node/safetensors-file.js";

describe("loadModelDir", () => {
  const rm = randomModel({
    type: "qwen2",
    hidden: 64,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    vocab: 50,
    positions: 16,
    seed: 31,
  });
  const dir = mkdtempSync(join(tmpdir(), "lorakit-model-"));

  it("reads model.safetensors or an index of shards alike", async () => {
    writeModel(join(dir, "one"), rm);
    const sharded = join(dir, "sharded");
    mkdirSync(sharded);
    writeFileSync(join(sharded, "config.json"), JSON.stringify(rm.config));
    const names = [...rm.tensors.keys()];
    const half = Math.floor(names.length / 2);
    const weightMap: Record<string, string> = {};
    [names.slice(0, half), names.slice(half)].forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeFileSync(join(sharded, file), toSafetensors(new Map(part.map((n) => [n, rm.tensors.get(n)!]))));
      for (const n of part) weightMap[n] = file;
    });
    writeFileSync(
      join(sharded, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    const a = await loadModelDir(join(dir, "one"));
    const b = await loadModelDir(sharded);
    expect(a.tokenizer).toBe(null);
    expect(b.model.parameterCount).toBe(a.model.parameterCount);
    const run = (m: typeof a.model) => m.forward([{ ids: [1, 2, 3], cache: m.createCache() }])[0]!;
    expect(run(b.model)).toEqual(run(a.model));
  });

  it("CausalLM.load reads on-demand files tensor by tensor; the constructor refuses them", async () => {
    const one = join(dir, "one", "model.safetensors");
    const file = await openSafetensors(one);
    try {
      expect(() => new CausalLM(rm.config, file)).toThrow(
        expect.objectContaining({
          code: "invalid_argument",
          message: expect.stringMatching(/use await CausalLM.load/),
        }),
      );
      const lazy = await CausalLM.load(rm.config, file);
      const eager = new CausalLM(rm.config, parseSafetensors(readFileSync(one)));
      const run = (m: CausalLM) => m.forward([{ ids: [4, 5], cache: m.createCache() }])[0]!;
      expect(run(lazy)).toEqual(run(eager));
    } finally {
      await file.close();
    }
  });

  it("refuses folders that are not models", async () => {
    await expect(loadModelDir(join(dir, "nothing"))).rejects.toMatchObject({
      code: "missing_file",
      message: expect.stringMatching(/is not a model folder \(no config.json\)$/),
    });
    const noWeights = join(dir, "no-weights");
    mkdirSync(noWeights);
    writeFileSync(join(noWeights, "config.json"), JSON.stringify(rm.config));
    await expect(loadModelDir(noWeights)).rejects.toThrow(/no model.safetensors or model.safetensors.index.json/);
    writeFileSync(
      join(noWeights, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { a: "../x.safetensors" } }),
    );
    await expect(loadModelDir(noWeights)).rejects.toThrow(
      /weight_map names shard "..\/x.safetensors", expected a file name/,
    );
  });
});

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { randomModel, randomPeftAdapter, writeAdapter, writeModel } from "../../scripts/random-model.mjs";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors } from "../../src/io/safetensors.js";
import { generateAll } from "../../src/model/generate.js";
import { CausalLM } from "../../src/model/model.js";
import { convertModelToGguf } from "../../src/node/gguf-file.js";
import { wordLevelTokenizer } from "../helpers/tokenizer.js";
import { lorakit } from "./helpers.js";

const WORDS = "the a cat dog sat on mat ran far and then it was big small red".split(" ");

// A WordLevel tokenizer.json over WORDS (ids 2…), "<unk>" 0 and "<eos>" 1.
const tokenizerJson = () => wordLevelTokenizer(WORDS);

describe("lorakit generate", () => {
  const dir = mkdtempSync(join(tmpdir(), "lorakit-generate-"));
  const modelDir = join(dir, "model");
  const textDir = join(dir, "text-model");
  const rm = randomModel({
    type: "gpt2",
    hidden: 64,
    layers: 2,
    heads: 4,
    vocab: WORDS.length + 2,
    positions: 32,
    seed: 21,
  });
  rm.config.eos_token_id = 1;
  const ad = randomPeftAdapter(rm, ["attn.c_attn", "attn.c_proj"], 4, 22);
  for (const t of ad.tensors.values()) for (let i = 0; i < t.data.length; i++) t.data[i]! *= 20;
  const llamaAdapter = randomPeftAdapter(
    randomModel({ type: "llama", hidden: 64, layers: 2, heads: 4, vocab: 18, positions: 32, seed: 2 }),
    ["q_proj"],
    4,
    3,
  );

  beforeAll(async () => {
    writeModel(modelDir, rm);
    await convertModelToGguf(modelDir, join(dir, "model.gguf"), { dtype: "F32" });
    writeModel(textDir, rm);
    writeFileSync(join(textDir, "tokenizer.json"), JSON.stringify(tokenizerJson()));
    writeAdapter(join(dir, "ad"), ad);
    writeAdapter(join(dir, "llama-ad"), llamaAdapter);
  });

  function expected(ids: number[], adapter: boolean, max: number): number[] {
    const model = new CausalLM(rm.config, parseSafetensors(readFileSync(join(modelDir, "model.safetensors"))));
    if (adapter)
      model.attachAdapter(
        "ad",
        loadPeftAdapter({
          config: JSON.stringify(ad.config),
          weights: readFileSync(join(dir, "ad", "adapter_model.safetensors")),
        }),
      );
    return generateAll(model, [{ ids, adapter: adapter ? "ad" : null }], { maxTokens: max })[0]!;
  }

  it("streams token ids (greedy, with and without the adapter)", () => {
    const base = lorakit(["generate", "--model", modelDir, "--ids", "2,3,4", "--max-tokens", "6"]);
    expect(base.stderr).toBe("");
    expect(base.code).toBe(0);
    expect(base.stdout.trim().split(" ").map(Number)).toEqual(expected([2, 3, 4], false, 6));
    const withAd = lorakit([
      "generate",
      "--model",
      modelDir,
      "--adapter",
      `ad=${join(dir, "ad")}`,
      "--ids",
      "2,3,4",
      "--max-tokens",
      "6",
    ]);
    expect(withAd.stdout.trim().split(" ").map(Number)).toEqual(expected([2, 3, 4], true, 6));
    expect(withAd.stdout).not.toEqual(base.stdout);
    const none = lorakit([
      "generate",
      "--model",
      modelDir,
      "--adapter",
      `ad=${join(dir, "ad")}`,
      "--use",
      "none",
      "--ids",
      "2,3,4",
      "--max-tokens",
      "6",
    ]);
    expect(none.stdout).toEqual(base.stdout);
  });

  it("takes and prints text with tokenizer.json", () => {
    const r = lorakit(["generate", "--model", textDir, "--prompt", "the cat sat", "--max-tokens", "5"]);
    expect(r.code).toBe(0);
    const want = expected([2, 4, 6], false, 5)
      .filter((t) => t !== 1)
      .map((t) => WORDS[t - 2] ?? "<unk>");
    expect(r.stdout.trim()).toBe(want.join(" "));
  });

  it("samples reproducibly from a seed", () => {
    const args = ["generate", "--model", modelDir, "--ids", "5", "--max-tokens", "8", "--temperature", "1.5", "--seed"];
    const a = lorakit([...args, "7"]).stdout;
    expect(lorakit([...args, "7"]).stdout).toBe(a);
    expect(a.trim().split(" ").length).toBeGreaterThan(0);
  });

  it("takes a negative number as an option's value (--seed -5 is --seed=-5)", () => {
    const args = ["generate", "--model", modelDir, "--ids", "5", "--max-tokens", "8", "--temperature", "1.5"];
    const spaced = lorakit([...args, "--seed", "-5"]);
    expect(spaced.stderr).toBe("");
    expect(spaced.code).toBe(0);
    expect(spaced.stdout).toBe(lorakit([...args, "--seed=-5"]).stdout);
    // a negative temperature reaches the option's own check (before: parseArgs' "ambiguous" message)
    const t = lorakit(["generate", "--model", modelDir, "--ids", "1", "--temperature", "-2"]);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/temperature is -2, expected a finite number ≥ 0 \[invalid_argument\]\n$/);
    const typo = lorakit(["generate", "--model", modelDir, "--ids", "1", "--temprature", "1"]);
    expect(typo.stderr).toBe(
      "lorakit generate: unknown option --temprature (did you mean --temperature?) (see 'lorakit generate --help')\n",
    );
  });

  it("one-line coded errors for bad input", () => {
    const cases: [string[], RegExp][] = [
      [
        ["--model", dir, "--ids", "1"],
        /^lorakit generate: loadModelDir: .* is not a model folder \(no config.json\) \[missing_file\]\n$/,
      ],
      [
        ["--model", modelDir, "--adapter", `x=${join(dir, "llama-ad")}`, "--ids", "1"],
        /targets linear "model.layers.0.self_attn.q_proj", which is not a module of this gpt2 model .*\[unknown_module\]\n$/,
      ],
      [["--model", modelDir, "--ids", "1", "--use", "zzz"], /^lorakit generate: --use zzz: no adapter of that name/],
      [
        ["--model", modelDir, "--prompt", "hi"],
        /--prompt needs .*tokenizer.json, which is missing; pass token ids with --ids\n$/,
      ],
      [
        ["--model", join(dir, "model.gguf"), "--prompt", "hi"],
        /--prompt needs a tokenizer.json, and a GGUF base model runs on token ids here; pass them with --ids\n$/,
      ],
      [["--model", modelDir, "--prompt", "hi", "--ids", "1"], /give exactly one of --prompt TEXT and --ids/],
      [["--model", modelDir, "--ids", "1,x"], /--ids must be comma-separated non-negative integers/],
      [["--model", modelDir, "--ids", "99"], /holds 99, expected token ids in \[0, 17\] .*\[invalid_argument\]\n$/],
      [
        ["--model", modelDir, "--ids", "1", "--temperature=-2"],
        /temperature is -2, expected a finite number ≥ 0 \[invalid_argument\]\n$/,
      ],
      [["--model", modelDir, "--adapter", "noequals", "--ids", "1"], /--adapter must be NAME=DIR/],
    ];
    for (const [args, re] of cases) {
      const r = lorakit(["generate", ...args]);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.split("\n").length, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    }
  });
});

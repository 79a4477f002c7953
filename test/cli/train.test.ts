// `lorakit train` through the built binary (dist/cli/main.js; `npm test` builds first): a one-epoch run writes a
// PEFT adapter, the base model, loss.svg and results.json, and the files reproduce the reported accuracy.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deriveSeed } from "../../src/index.js";
import { loadPeftAdapterDir } from "../../src/node/index.js";
import { makeSpiralTask } from "../../src/train/data.js";
import { DEMO_CONFIG } from "../../src/train/demo.js";
import { evaluateClassifier } from "../../src/train/loop.js";
import { applyLoraModules, mlpFromSafetensors } from "../../src/train/mlp-files.js";

const BIN = new URL("../../dist/cli/main.js", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "lorakit-train-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function lorakit(...args: string[]) {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run "npm run build" first`);
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("lorakit train", () => {
  it("--epochs 1 --json --rank 3: results, adapter files and loss curve; the files reproduce the accuracy", async () => {
    const out = join(dir, "run");
    const r = lorakit("train", "--epochs", "1", "--seed", "2", "--rank", "3", "--json", "--out", out);
    expect(r.stderr).toMatch(/^pretrain epoch 1\/2 loss [\d.]+ \(9\.1% done, ETA [\d.]+s\)$/m);
    expect(r.stderr).toMatch(/^full fine-tuning epoch 1\/1 loss [\d.]+ \(100\.0% done, ETA 0\.0s\)$/m);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.seed).toBe(2);
    expect(json.rows.map((row: { method: string }) => row.method)).toEqual([
      "frozen base",
      "LoRA r=1",
      "LoRA r=2",
      "LoRA r=4",
      "LoRA r=8",
      "LoRA r=3",
      "LoRA r=3, float32 base",
      "LoRA r=3, Q8_0 base",
      "LoRA r=3, Q4_0 base",
      "full fine-tuning",
    ]);
    // adapters over the quantized bases train: each beats the frozen base on the target task
    const acc = (m: string) => json.rows.find((x: { method: string }) => x.method === m).targetAccuracy;
    for (const p of ["float32", "Q8_0", "Q4_0"]) expect(acc(`LoRA r=3, ${p} base`)).toBeGreaterThan(acc("frozen base"));
    expect(JSON.parse(readFileSync(join(out, "results.json"), "utf8"))).toEqual(json);
    expect(readFileSync(join(out, "loss.svg"), "utf8")).toMatch(/^<svg [\s\S]*<\/svg>\n$/);
    const config = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
    expect([config.r, config.lora_alpha, config.target_modules]).toEqual([3, 6, ["0", "2", "4"]]);

    const adapter = await loadPeftAdapterDir(out);
    const base = mlpFromSafetensors(readFileSync(join(out, "base_model.safetensors")));
    const model = applyLoraModules(base, adapter.modules);
    const task = makeSpiralTask({ seed: deriveSeed(2, "task"), ...DEMO_CONFIG.task });
    const row = json.rows.find((x: { method: string }) => x.method === "LoRA r=3");
    // the adapter was rounded to float32 on saving: allow a couple of test rows to flip
    expect(Math.abs(evaluateClassifier(model, task.target.test).accuracy - row.targetAccuracy)).toBeLessThanOrEqual(
      2 / DEMO_CONFIG.task.nTest,
    );
    expect(evaluateClassifier(base, task.source.test).accuracy).toBe(json.pretrain.sourceAccuracy);
  });

  it("prints the table without --json", () => {
    const out = join(dir, "table");
    const r = lorakit("train", "--epochs", "1", "--out", out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^method +trainable +% of full +target acc +source acc +time$/m);
    expect(r.stdout).toMatch(/^LoRA r=2 +1062 +5\.6% +[\d.]+% +[\d.]+% +[\d.]+s$/m);
    expect(r.stdout).toMatch(/^LoRA r=2, Q4_0 base +1062 +5\.6% +[\d.]+% +[\d.]+% +[\d.]+s$/m);
    expect(r.stdout).toMatch(/^full fine-tuning +19075 +100\.0% /m);
    expect(r.stdout).toContain(`wrote ${out}: LoRA r=2 adapter`);
  });

  it("a run that diverges (--lora-plus 1e300) stops with non_finite and writes no adapter (it wrote NaN weights)", () => {
    const out = join(dir, "diverge");
    const r = lorakit("train", "--epochs", "1", "--lora-plus", "1e300", "--out", out);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n").at(-2)).toMatch(
      /^lorakit train: trainClassifier: epoch 1 step \d+ \(optimizer step \d+\): the loss is NaN, expected a finite number \(lr too large, or non-finite weights\?\); stopped before this step's update \[non_finite\]$/,
    );
    expect(r.stdout).toBe("");
    expect(existsSync(join(out, "adapter_model.safetensors"))).toBe(false);
  });

  it("a folder where an output file goes is refused before the run, and nothing is written", () => {
    const out = join(dir, "blocked");
    mkdirSync(join(out, "loss.svg"), { recursive: true });
    const r = lorakit("train", "--epochs", "1", "--out", out);
    // it trained for the whole run, wrote the adapter and the base, then failed with "unexpected error: EISDIR", exit 1
    expect([r.code, r.stderr]).toEqual([
      2,
      `lorakit train: train: ${JSON.stringify(join(out, "loss.svg"))} is a folder where the output file loss.svg goes; nothing was run [invalid_output]\n`,
    ]);
    expect(readdirSync(out)).toEqual(["loss.svg"]);
  });

  it("usage errors exit 2 with a one-line message", () => {
    const cases: [string[], string][] = [
      [["--epochs", "0"], 'lorakit train: --epochs must be a positive integer, got "0"\n'],
      [["--epochs", "-1"], 'lorakit train: --epochs must be a positive integer, got "-1"\n'],
      [["--epochs", "1.5"], 'lorakit train: --epochs must be a positive integer, got "1.5"\n'],
      [["--epochs", "NaN"], 'lorakit train: --epochs must be a positive integer, got "NaN"\n'],
      [["--rank", "0"], 'lorakit train: --rank must be a positive integer, got "0"\n'],
      [["--rank", "129"], "lorakit train: --rank must be an integer from 1 to 128, got 129\n"],
      [["--out="], 'lorakit train: --out must name a folder, got ""\n'],
      [["--seed", "1.5"], 'lorakit train: --seed must be a non-negative integer, got "1.5"\n'],
      [["--lora-plus", "x"], 'lorakit train: --lora-plus must be a positive number, got "x"\n'],
    ];
    for (const [args, message] of cases) {
      const r = lorakit("train", ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(message);
    }
    expect(lorakit("train", "--bogus").stderr).toMatch(
      /^lorakit train: unknown option --bogus \(see 'lorakit train --help'\)\n$/,
    );
    // an --out that could not be written is refused before the run, not after it
    writeFileSync(join(dir, "a-file"), "x");
    const asFile = lorakit("train", "--out", join(dir, "a-file"));
    expect([asFile.code, asFile.stderr]).toEqual([
      2,
      `lorakit train: train: --out ${JSON.stringify(join(dir, "a-file"))} is not a folder; nothing was run [invalid_output]\n`,
    ]);
    const under = lorakit("train", "--out", join(dir, "a-file", "sub", "run"));
    expect([under.code, under.stderr]).toEqual([
      2,
      `lorakit train: train: cannot create the folder ${join(dir, "a-file", "sub")} (ENOTDIR) [not_writable]\n`,
    ]);
    const help = lorakit("train", "--help");
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: lorakit train \[--seed N\]/);
  });
});

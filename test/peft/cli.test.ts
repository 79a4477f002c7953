// `lorakit inspect` and `lorakit merge` through the built binary (dist/cli/main.js; `npm test` builds first).

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { mergeCommand } from "../../cli/merge.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors } from "../../src/io/safetensors.js";
import { savePeftAdapterDir } from "../../src/node/adapter-files.js";
import { REAL_FIXTURES, REPO_ROOT } from "./shared.js";
import { adapterBytes, GPT2_CONFIG, gpt2BaseBytes, gpt2Modules } from "./synthetic.js";

const MAIN = join(REPO_ROOT, "dist", "cli", "main.js");

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts exit 2 with exactly one stderr line matching `pattern`. */
function expectInputError(args: string[], pattern: RegExp): void {
  const r = cli(...args);
  expect(r.status).toBe(2);
  const lines = r.stderr.split("\n").filter((l) => l.length > 0);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

const dir = mkdtempSync(join(tmpdir(), "lorakit-cli-"));
const adapterDir = join(dir, "adapter");
const basePath = join(dir, "model.safetensors");

beforeAll(async () => {
  if (!existsSync(MAIN)) execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: REPO_ROOT });
  mkdirSync(adapterDir);
  const a = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(2, 8, 4)) });
  await savePeftAdapterDir(adapterDir, a.modules, a.config);
  writeFileSync(basePath, gpt2BaseBytes(2, 8));
});

describe.skipIf(REAL_FIXTURES === null)("lorakit inspect on the real GPT-2 adapter", () => {
  const gpt2 = join(REAL_FIXTURES ?? "", "gpt2-tigrinya-lora");

  it("prints a table of modules with shapes, dtype, r, alpha, scaling and parameters", () => {
    const r = cli("inspect", gpt2);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/: PEFT LoRA adapter, 36 modules\n/);
    expect(r.stdout).toMatch(/module\s+down\s+up\s+dtype\s+r\s+alpha\s+scaling\s+params\n/);
    expect(r.stdout).toMatch(/transformer\.h\.0\.attn\.c_attn\s+\[768, 8\]\s+\[8, 2304\]\s+F32\s+8\s+32\s+4\s+24576\n/);
    expect(r.stdout).toMatch(/transformer\.h\.11\.mlp\.c_proj\s+\[3072, 8\]\s+\[8, 768\]\s+F32\s+8\s+32\s+4\s+30720\n/);
    expect(r.stdout).toMatch(/trainable parameters: 811008\n/);
    expect(r.stderr).toBe("");
  });

  it("--json gives the same facts for machines", () => {
    const r = cli("inspect", gpt2, "--json");
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.format).toBe("peft");
    expect(doc.modules).toHaveLength(36);
    expect(doc.trainableParams).toBe(811008);
    expect(doc.config).toMatchObject({ r: 8, lora_alpha: 32, fan_in_fan_out: true });
    expect(doc.modules[0]).toMatchObject({
      module: "transformer.h.0.attn.c_attn",
      down: [768, 8],
      up: [8, 2304],
      scaling: 4,
    });
  });

  it("inspects the MLX adapter too", () => {
    const r = cli("inspect", join(REAL_FIXTURES ?? "", "mlx-examples", "llms", "adapters"), "--json");
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.format).toBe("mlx");
    // alpha as PEFT would write it for the same scaling: scaling·r
    expect(doc.modules[0]).toMatchObject({ r: 8, alpha: 160, scaling: 20 });
  });
});

describe("lorakit inspect --base and raw files", () => {
  it("--base checks each module's base tensor and gives the trainable fraction", () => {
    const r = cli("inspect", adapterDir, "--base", basePath, "--json");
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.modules.every((m: { baseStatus: string }) => m.baseStatus === "ok")).toBe(true);
    const base = parseSafetensors(readFileSync(basePath));
    const params = base.names().reduce((a, n) => a + base.info(n).shape.reduce((x, y) => x * y, 1), 0);
    expect(doc.base.params).toBe(params);
    expect(doc.base.fraction).toBe(doc.trainableParams / params);
    const t = cli("inspect", adapterDir, "--base", basePath);
    expect(t.stdout).toMatch(
      /transformer\.h\.1\.mlp\.c_proj\s+\[32, 4\]\s+\[4, 8\]\s+F32\s+4\s+8\s+2\s+160\s+h\.1\.mlp\.c_proj\.weight\n/,
    );
    expect(t.stdout).toMatch(/trainable parameters: \d+ \(\d+(\.\d+)?% of \d+ in /);
  });

  it("a .safetensors file with no adapter_config.json is listed tensor by tensor", () => {
    const r = cli("inspect", basePath);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/tensors, \d+ parameters \(no adapter_config\.json beside it\)/);
    expect(r.stdout).toMatch(/h\.0\.attn\.c_attn\.weight\s+F32\s+\[8, 24\]\s+192\n/);
  });
});

describe("lorakit merge", () => {
  it("merges and writes the output, with plain progress lines when not on a TTY", () => {
    const out = join(dir, "merged.safetensors");
    const r = cli("merge", "--base", basePath, "--adapter", adapterDir, "--out", out, "--dtype", "bf16");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*merged\.safetensors: 15 tensors, 6 merged, [\d.]+ KiB \(bf16\)\n$/);
    expect(r.stderr).toMatch(/^merge: \d+\/15 tensors, /);
    expect(r.stderr).toMatch(/merge: 15\/15 tensors, /);
    expect(parseSafetensors(readFileSync(out)).info("h.0.attn.c_attn.weight").dtype).toBe("BF16");
  });

  it("input errors exit 2 with one line", () => {
    const out = join(dir, "never.safetensors");
    expectInputError(["merge", "--adapter", adapterDir, "--out", out], /^lorakit merge: --base is required/);
    expectInputError(
      ["merge", "--base", join(dir, "nope"), "--adapter", adapterDir, "--out", out],
      /--base .*nope does not exist$/,
    );
    expectInputError(["merge", "--base", basePath, "--out", out], /--adapter is required/);
    expectInputError(["merge", "--base", basePath, "--adapter", adapterDir], /--out is required/);
    expectInputError(
      ["merge", "--base", basePath, "--adapter", adapterDir, "--out", join(dir, "no-such-dir", "m.safetensors")],
      /out ".*m\.safetensors" is in .*no-such-dir, which does not exist; nothing was written \[invalid_output\]$/,
    );
    expectInputError(
      ["merge", "--base", basePath, "--adapter", adapterDir, "--out", out, "--dtype", "f8"],
      /--dtype must be f32, f16 or bf16, got "f8"$/,
    );
    expectInputError(["merge", "--bogus"], /^lorakit merge: unknown option --bogus \(see 'lorakit merge --help'\)$/);
    expectInputError(["inspect"], /^lorakit inspect: expected one adapter folder, \.safetensors or \.gguf file, got 0/);
    expectInputError(["inspect", join(dir, "nope")], /^lorakit inspect: .*nope does not exist$/);
    expectInputError(
      ["inspect", join(REPO_ROOT, "test", "fixtures", "peft", "esm2-bindingsites")],
      /Git LFS pointer, not weights .* \[unsupported_format\]$/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it("an adapter that does not fit the base: exit 2, [missing_tensor] / [shape_mismatch], nothing written", async () => {
    const out = join(dir, "never.safetensors");
    const bigger = join(dir, "bigger");
    mkdirSync(bigger);
    const a = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(3, 8, 4)) });
    await savePeftAdapterDir(bigger, a.modules, a.config);
    expectInputError(
      ["merge", "--base", basePath, "--adapter", bigger, "--out", out],
      /have no tensor in the base model: "transformer\.h\.2\.attn\.c_attn".* \[missing_tensor\]$/,
    );
    const wide = join(dir, "wide");
    mkdirSync(wide);
    const w = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(2, 16, 4)) });
    await savePeftAdapterDir(wide, w.modules, w.config);
    expectInputError(
      ["merge", "--base", basePath, "--adapter", wide, "--out", out],
      /do not fit the adapter: "h\.0\.attn\.c_attn\.weight" is F32 \[8, 24\], expected \[16, 48\].* \[shape_mismatch\]$/,
    );
    expect(existsSync(out)).toBe(false);
  });
});

describe("lorakit merge progress on a TTY", () => {
  it("redraws one bar with \\r and ends it with a newline", async () => {
    let err = "";
    let out = "";
    const io = { stdout: (t: string) => void (out += t), stderr: (t: string) => void (err += t), isTTY: true };
    const code = await mergeCommand.run(
      ["--base", basePath, "--adapter", adapterDir, "--out", join(dir, "tty.safetensors")],
      io,
    );
    expect(code).toBe(0);
    expect(err).toMatch(/^\r\[[#.]{30}\]\s+\d+% 1\/15 tensors/);
    expect(err).toMatch(/\r\[#{30}\] 100% 15\/15 tensors\n$/);
    expect(out).toMatch(/^wrote .*tty\.safetensors: 15 tensors, 6 merged/);
  });
});

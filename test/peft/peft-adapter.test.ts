import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadMlxAdapter } from "../../src/io/mlx-adapter.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { savePeftAdapter } from "../../src/io/peft-save.js";
import { parseSafetensors, serializeSafetensors } from "../../src/io/safetensors.js";
import { loadAdapter, loadPeftAdapterDir, savePeftAdapterDir } from "../../src/node/adapter-files.js";
import { loraError } from "../helpers/errors.js";
import { REAL_FIXTURES, REPO_ROOT } from "./shared.js";
import { adapterBytes, GPT2_CONFIG, gpt2Modules, randomArray, rng } from "./synthetic.js";

const FIXTURES = join(REPO_ROOT, "test", "fixtures", "peft");

/** Bitwise equality of two typed arrays (faster than a deep toEqual on large arrays). */
function sameBits(a: ArrayBufferView | undefined, b: ArrayBufferView | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

describe("savePeftAdapter / loadPeftAdapter round trip", () => {
  it.skipIf(REAL_FIXTURES === null)("re-saving the real GPT-2 adapter reproduces both files byte for byte", () => {
    const dir = join(REAL_FIXTURES ?? "", "gpt2-tigrinya-lora");
    const configText = readFileSync(join(dir, "adapter_config.json"), "utf8");
    const weights = readFileSync(join(dir, "adapter_model.safetensors"));
    const adapter = loadPeftAdapter({ config: configText, weights });
    const saved = savePeftAdapter(adapter.modules, adapter.config);
    expect(saved.configJson).toBe(configText);
    expect(Buffer.from(saved.weights).equals(weights)).toBe(true);
  });

  it.each(["F32", "F16", "BF16"] as const)(
    "%s adapters round trip bit-exactly, with DoRA magnitudes and pattern overrides",
    (dtype) => {
      const modules = [
        { path: "model.layers.0.self_attn.q_proj", dIn: 6, dOut: 5, r: 3, dtype, magnitude: true },
        { path: "model.layers.0.self_attn.v_proj", dIn: 6, dOut: 4, r: 2, dtype, magnitude: true },
      ];
      const config = {
        peft_type: "LORA",
        r: 3,
        lora_alpha: 6,
        use_dora: true,
        use_rslora: true,
        rank_pattern: { v_proj: 2 },
        alpha_pattern: { "layers.0.self_attn.v_proj": 5 },
      };
      const weights = adapterBytes(modules);
      const a = loadPeftAdapter({ config, weights });
      const q = a.modules.find((m) => m.modulePath.endsWith("q_proj"))!;
      const v = a.modules.find((m) => m.modulePath.endsWith("v_proj"))!;
      expect([q.r, q.alpha, q.scaling, q.dtype]).toEqual([3, 6, 6 / Math.sqrt(3), dtype]);
      expect([v.r, v.alpha, v.scaling]).toEqual([2, 5, 5 / Math.sqrt(2)]);
      const saved = savePeftAdapter(a.modules, a.config);
      expect(Buffer.from(saved.weights).equals(Buffer.from(weights))).toBe(true);
      const b = loadPeftAdapter({ config: saved.configJson, weights: saved.weights });
      for (const [x, y] of a.modules.map((m, k) => [m, b.modules[k]!] as const)) {
        expect(y.down.data).toEqual(x.down.data);
        expect(y.up.data).toEqual(x.up.data);
        expect(y.magnitude).toEqual(x.magnitude);
        expect([y.r, y.alpha, y.scaling, y.dtype]).toEqual([x.r, x.alpha, x.scaling, x.dtype]);
      }
    },
  );

  it("writes exact rank_pattern / alpha_pattern entries for modules that differ from the config", () => {
    const next = rng();
    const mk = (path: string, r: number, alpha: number) => ({
      modulePath: path,
      kind: "linear" as const,
      down: { data: randomArray(4 * r, next), rows: 4, cols: r },
      up: { data: randomArray(r * 3, next), rows: r, cols: 3 },
      r,
      alpha,
      scaling: alpha / r,
      fanInFanOut: false,
      dtype: "F32" as const,
    });
    const saved = savePeftAdapter([mk("a.q_proj", 2, 4), mk("a.v_proj", 3, 9)], {
      peft_type: "LORA",
      r: 2,
      lora_alpha: 4,
    });
    const cfg = JSON.parse(saved.configJson) as Record<string, unknown>;
    // exact keys, regex-escaped: "a.v_proj" as a pattern would also match "axv_proj"
    expect(cfg.rank_pattern).toEqual({ "a\\.v_proj": 3 });
    expect(cfg.alpha_pattern).toEqual({ "a\\.v_proj": 9 });
    expect(cfg.target_modules).toEqual(["q_proj", "v_proj"]);
    expect(cfg.inference_mode).toBe(true);
    expect(saved.configJson).toMatch(/"lora_dropout": 0\.0,/);
    const back = loadPeftAdapter({ config: saved.configJson, weights: saved.weights });
    expect(back.modules.map((m) => [m.r, m.alpha])).toEqual([
      [2, 4],
      [3, 9],
    ]);
    expect(parseSafetensors(saved.weights).metadata).toEqual({ format: "pt" });
  });

  it("keeps modules_to_save tensors under their plain keys", () => {
    const weights = adapterBytes([{ path: "encoder.q", dIn: 3, dOut: 3, r: 1 }], {
      "base_model.model.classifier.weight": {
        dtype: "F32",
        shape: [2, 3],
        data: Float32Array.from([1, 2, 3, 4, 5, 6]),
      },
      "base_model.model.classifier.bias": { dtype: "F32", shape: [2], data: Float32Array.from([7, 8]) },
    });
    const a = loadPeftAdapter({ config: { peft_type: "LORA", r: 1, modules_to_save: ["classifier"] }, weights });
    expect([...a.modulesToSave.keys()]).toEqual(["classifier.bias", "classifier.weight"]);
    const saved = savePeftAdapter(a.modules, a.config, { modulesToSave: a.modulesToSave });
    expect(Buffer.from(saved.weights).equals(Buffer.from(weights))).toBe(true);
  });

  it("savePeftAdapterDir writes a folder loadPeftAdapterDir reads back", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lorakit-peft-"));
    const a = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(1, 4, 4)) });
    await savePeftAdapterDir(dir, a.modules, a.config);
    const b = await loadPeftAdapterDir(dir);
    expect(b.modules.map((m) => m.up.data)).toEqual(a.modules.map((m) => m.up.data));
  });
});

describe("loadPeftAdapter errors (one per code)", () => {
  const q = { path: "m.q_proj", dIn: 4, dOut: 3, r: 2 };

  it("shape_mismatch: config r disagrees with the tensors, naming the module and both numbers", async () => {
    const e = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA", r: 4 }, weights: adapterBytes([q]) }),
      "shape_mismatch",
    );
    expect(e.message).toMatch(
      /loadPeftAdapter: module "m\.q_proj" has r = 2 in its tensors \(".*lora_A\.weight" is \[2, 4\]\) but the config says r = 4/,
    );
  });

  it("shape_mismatch: the two factors disagree on r", async () => {
    const weights = serializeSafetensors({
      "base_model.model.m.lora_A.weight": { dtype: "F32", shape: [2, 4], data: new Float32Array(8) },
      "base_model.model.m.lora_B.weight": { dtype: "F32", shape: [3, 3], data: new Float32Array(9) },
    });
    const e = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA", r: 2 }, weights }),
      "shape_mismatch",
    );
    expect(e.message).toMatch(/has shape \[3, 3\], expected \[3, 2\] because .* is \[2, 4\] \(r = 2\)/);
  });

  it("shape_mismatch: a DoRA magnitude of the wrong length", async () => {
    const weights = adapterBytes([q], {
      "base_model.model.m.q_proj.lora_magnitude_vector": { dtype: "F32", shape: [4], data: new Float32Array(4) },
    });
    const e = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA", r: 2, use_dora: true }, weights }),
      "shape_mismatch",
    );
    expect(e.message).toMatch(/has shape \[4\], expected \[3\] \(dOut of module "m\.q_proj"\)/);
  });

  it("missing_tensor: a module with only one factor, no LoRA tensors at all, DoRA without magnitude", async () => {
    const one = serializeSafetensors({
      "base_model.model.m.lora_A.weight": { dtype: "F32", shape: [2, 4], data: new Float32Array(8) },
    });
    const e1 = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA", r: 2 }, weights: one }),
      "missing_tensor",
    );
    expect(e1.message).toMatch(/module "m" has no tensor "base_model\.model\.m\.lora_B\.weight"/);
    const none = serializeSafetensors({
      "base_model.model.x.weight": { dtype: "F32", shape: [1], data: new Float32Array(1) },
    });
    const e2 = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA" }, weights: none }),
      "missing_tensor",
    );
    expect(e2.message).toMatch(/has no LoRA tensors \(1 tensors/);
    const e3 = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA", r: 2, use_dora: true }, weights: adapterBytes([q]) }),
      "missing_tensor",
    );
    expect(e3.message).toMatch(/has no tensor ".*lora_magnitude_vector" although the config has use_dora true/);
  });

  it("unexpected_tensor: a tensor outside modules_to_save, a magnitude without use_dora", async () => {
    const extra = adapterBytes([q], {
      "base_model.model.head.weight": { dtype: "F32", shape: [1], data: new Float32Array(1) },
    });
    const e1 = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA", r: 2 }, weights: extra }),
      "unexpected_tensor",
    );
    expect(e1.message).toMatch(
      /tensor "base_model\.model\.head\.weight" is neither a LoRA tensor, a LoRA module's base layer, part of modules_to_save \(null\) nor a bias \(bias "none"\)/,
    );
    const dora = adapterBytes([{ ...q, magnitude: true }]);
    const e2 = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA", r: 2 }, weights: dora }),
      "unexpected_tensor",
    );
    expect(e2.message).toMatch(/is a DoRA magnitude but the config has use_dora false/);
  });

  it("unexpected_tensor: two adapters' factors for one module (in-memory keys with different adapter names)", async () => {
    const z = (shape: number[]) => ({ dtype: "F32" as const, shape, data: new Float32Array(shape[0]! * shape[1]!) });
    const weights = serializeSafetensors({
      "base_model.model.m.lora_A.default.weight": z([1, 2]),
      "base_model.model.m.lora_A.other.weight": z([1, 2]),
      "base_model.model.m.lora_B.default.weight": z([2, 1]),
    });
    const e = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA", r: 1 }, weights }),
      "unexpected_tensor",
    );
    expect(e.message).toMatch(
      /module "m" has two down factors, ".*default\.weight" and ".*other\.weight" \(one adapter per file/,
    );
  });

  it("accepts in-memory keys with the adapter name, and a LoRA module's bias (old key <module>.bias)", () => {
    const weights = serializeSafetensors({
      "base_model.model.m.lora_A.default.weight": { dtype: "F32", shape: [1, 2], data: Float32Array.from([1, 2]) },
      "base_model.model.m.lora_B.default.weight": { dtype: "F32", shape: [2, 1], data: Float32Array.from([3, 4]) },
      "base_model.model.m.bias": { dtype: "F32", shape: [2], data: Float32Array.from([5, 6]) },
    });
    const a = loadPeftAdapter({ config: { peft_type: "LORA", r: 1, bias: "all" }, weights });
    expect(a.modules[0]!.modulePath).toBe("m");
    expect([...a.modulesToSave.keys()]).toEqual([]);
    expect([...a.modules[0]!.bias!]).toEqual([5, 6]);
    const saved = parseSafetensors(savePeftAdapter(a.modules, a.config, { modulesToSave: a.modulesToSave }).weights);
    expect(saved.names().sort()).toEqual([
      "base_model.model.m.base_layer.bias",
      "base_model.model.m.lora_A.weight",
      "base_model.model.m.lora_B.weight",
    ]);
  });

  it("unsupported_dtype: integer factors", async () => {
    const weights = serializeSafetensors({
      "base_model.model.m.lora_A.weight": { dtype: "I32", shape: [1, 1], data: new Int32Array(1) },
      "base_model.model.m.lora_B.weight": { dtype: "I32", shape: [1, 1], data: new Int32Array(1) },
    });
    const e = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA", r: 1 }, weights }),
      "unsupported_dtype",
    );
    expect(e.message).toMatch(/tensor ".*lora_A\.weight" has dtype I32, expected F32, F16 or BF16/);
  });

  it("unsupported_format: an MLX config, an LFS pointer, an MLX folder (and a cut-off pickle)", async () => {
    const mlxConfig = readFileSync(join(FIXTURES, "mlx-adapters", "adapter_config.json"), "utf8");
    const e1 = await loraError(
      () => loadPeftAdapter({ config: mlxConfig, weights: adapterBytes([q]) }),
      "unsupported_format",
    );
    expect(e1.message).toMatch(/this is an MLX adapter, not PEFT/);
    const e2 = await loraError(() => loadPeftAdapterDir(join(FIXTURES, "esm2-bindingsites")), "unsupported_format");
    expect(e2.message).toMatch(/adapter_model\.bin is a Git LFS pointer, not weights \(131 bytes/);
    // a pickle is read by the torch.save reader (test/torch/), which reports a cut-off one as pickle_invalid
    const pickle = Uint8Array.from([0x80, 0x04, 0x95, 0, 0, 0, 0, 0, 0, 0]);
    const e3 = await loraError(
      () => loadPeftAdapter({ config: { peft_type: "LORA" }, weights: pickle }),
      "pickle_invalid",
    );
    expect(e3.message).toMatch(/pickle byte 2: operand needs 8 bytes but only 7 remain/);
    const dir = mkdtempSync(join(tmpdir(), "lorakit-mlx-"));
    writeFileSync(join(dir, "adapters.safetensors"), serializeSafetensors({}));
    writeFileSync(join(dir, "adapter_config.json"), mlxConfig);
    const e4 = await loraError(() => loadPeftAdapterDir(dir), "unsupported_format");
    expect(e4.message).toMatch(/holds adapters\.safetensors: this is an MLX adapter, not PEFT/);
  });

  it("missing_file: a folder without the adapter files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lorakit-empty-"));
    const e = await loraError(() => loadPeftAdapterDir(dir), "missing_file");
    expect(e.message).toMatch(/adapter_model\.safetensors does not exist \(a PEFT adapter folder needs/);
    const e2 = await loraError(() => loadAdapter(join(dir, "nope")), "missing_file");
    expect(e2.message).toMatch(/nope does not exist \(expected an adapter folder or \.safetensors file\)/);
    // a weights file alone: the message names the file and where its config should be
    writeFileSync(join(dir, "w.safetensors"), serializeSafetensors({}));
    const e3 = await loraError(() => loadAdapter(join(dir, "w.safetensors")), "missing_file");
    expect(e3.message).toBe(
      `loadAdapter: ${join(dir, "adapter_config.json")} does not exist (a weights file such as ${join(dir, "w.safetensors")} needs adapter_config.json beside it)`,
    );
  });

  it("loadAdapter of an adapter_config.json loads its folder (PEFT and MLX-LM)", async () => {
    const a = loadPeftAdapter({ config: { peft_type: "LORA", r: 2, lora_alpha: 4 }, weights: adapterBytes([q]) });
    const peft = mkdtempSync(join(tmpdir(), "lorakit-config-"));
    await savePeftAdapterDir(peft, a.modules, a.config);
    const viaConfig = await loadAdapter(join(peft, "adapter_config.json"));
    expect(viaConfig.format).toBe("peft");
    expect(viaConfig).toEqual(await loadAdapter(peft));
    const mlx = mkdtempSync(join(tmpdir(), "lorakit-config-mlx-"));
    writeFileSync(join(mlx, "adapters.safetensors"), serializeSafetensors({}));
    writeFileSync(
      join(mlx, "adapter_config.json"),
      readFileSync(join(FIXTURES, "mlx-adapters", "adapter_config.json")),
    );
    const mlxViaConfig = await loadAdapter(join(mlx, "adapter_config.json"));
    expect(mlxViaConfig.format).toBe("mlx");
    expect(mlxViaConfig).toEqual(await loadAdapter(mlx));
    // another JSON file is still read as weights, and refused as such
    writeFileSync(join(mlx, "other.json"), '{"peft_type": "LORA", "r": 8}');
    const e = await loraError(() => loadAdapter(join(mlx, "other.json")), "header_too_large");
    expect(e.message).toMatch(/^parseSafetensors: header length \d+ exceeds the limit/);
  });

  it("invalid_argument: saving two modules with the same path", async () => {
    const a = loadPeftAdapter({ config: { peft_type: "LORA", r: 2 }, weights: adapterBytes([q]) });
    const e = await loraError(() => savePeftAdapter([a.modules[0]!, a.modules[0]!], a.config), "invalid_argument");
    expect(e.message).toMatch(/savePeftAdapter: tensor ".*lora_A\.weight" would be written twice/);
  });

  it("shape_mismatch: saving a module whose down and up disagree", async () => {
    const a = loadPeftAdapter({ config: { peft_type: "LORA", r: 2 }, weights: adapterBytes([q]) });
    const bad = { ...a.modules[0]!, r: 3 };
    const e = await loraError(() => savePeftAdapter([bad], a.config), "shape_mismatch");
    expect(e.message).toMatch(
      /module "m\.q_proj" has down \[4, 2\] and up \[2, 3\], expected \[dIn, 3\] and \[3, dOut\]/,
    );
  });
});

describe.skipIf(REAL_FIXTURES === null)("MLX adapters", () => {
  const dir = join(REAL_FIXTURES ?? "", "mlx-examples", "llms", "adapters");

  it("loads the real MLX adapter: 8 modules, down = lora_a, up = lora_b, scaling scale·alpha/rank = 20", async () => {
    const a = await loadAdapter(dir);
    expect(a.format).toBe("mlx");
    expect(a.modules).toHaveLength(8);
    const st = parseSafetensors(readFileSync(join(dir, "adapters.safetensors")));
    for (const m of a.modules) {
      expect(m).toMatchObject({ r: 8, scaling: 20, fanInFanOut: false, kind: "linear", dtype: "F32" });
      expect(sameBits(m.down.data, st.toFloat32(`${m.modulePath}.lora_a`))).toBe(true);
      expect(sameBits(m.up.data, st.toFloat32(`${m.modulePath}.lora_b`))).toBe(true);
    }
    // lora_layers without use_dora: an mlx-examples config of 2024-04-02 … 05-16, certainly scale·alpha/rank
    expect(a.warnings).toEqual([]);
    const viaFile = await loadAdapter(join(dir, "adapters.safetensors"));
    expect(viaFile.format).toBe("mlx");
  });

  it("MLX errors: bad lora_parameters (invalid_config), a stray key (unexpected_tensor), a lone factor (missing_tensor), rank (shape_mismatch)", async () => {
    const good = { lora_parameters: { rank: 1, alpha: 2, scale: 1 } };
    const f = (t: Record<string, number[]>) =>
      serializeSafetensors(
        Object.fromEntries(
          Object.entries(t).map(([k, shape]) => [
            k,
            { dtype: "F32" as const, shape, data: new Float32Array(shape[0]! * shape[1]!) },
          ]),
        ),
      );
    const e1 = await loraError(
      () => loadMlxAdapter({ config: { lora_parameters: { rank: 0, scale: "x" } }, weights: f({}) }),
      "invalid_config",
    );
    expect(e1.message).toMatch(
      /2 problems:[\s\S]*rank must be a positive integer, got 0 \(path: lora_parameters\.rank\)/,
    );
    const e2 = await loraError(
      () => loadMlxAdapter({ config: good, weights: f({ "m.weight": [1, 1] }) }),
      "unexpected_tensor",
    );
    expect(e2.message).toMatch(/tensor "m\.weight" is not an MLX LoRA factor/);
    const e3 = await loraError(
      () => loadMlxAdapter({ config: good, weights: f({ "m.lora_a": [3, 1] }) }),
      "missing_tensor",
    );
    expect(e3.message).toMatch(/module "m" has no tensor "m\.lora_b"/);
    const e4 = await loraError(
      () => loadMlxAdapter({ config: good, weights: f({ "m.lora_a": [3, 2], "m.lora_b": [2, 3] }) }),
      "shape_mismatch",
    );
    expect(e4.message).toMatch(/expected \[dIn, 1\] and \[1, dOut\] \(lora_parameters\.rank = 1\)/);
    const ints = serializeSafetensors({
      "m.lora_a": { dtype: "I8", shape: [3, 1], data: new Int8Array(3) },
      "m.lora_b": { dtype: "I8", shape: [1, 3], data: new Int8Array(3) },
    });
    const e5 = await loraError(() => loadMlxAdapter({ config: good, weights: ints }), "unsupported_dtype");
    expect(e5.message).toMatch(/loadMlxAdapter: tensor "m\.lora_a" has dtype I8, expected F32, F16 or BF16/);
  });
});

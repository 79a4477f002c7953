import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseGguf } from "../../src/io/gguf.js";
import { adapterToOnnx, onnxAdapterModules, parseOnnxAdapter } from "../../src/io/onnx-adapter.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { serializeSafetensors } from "../../src/io/safetensors.js";
import { GOLDEN, tmpFile } from "../gguf/helpers.js";
import { lorakit } from "./helpers.js";

describe.skipIf(GOLDEN === null)("lorakit convert", () => {
  const g = GOLDEN!;
  it("PEFT → GGUF → PEFT keeps every module's scaling (rsLoRA)", () => {
    const gguf = tmpFile("cli-rslora.gguf");
    const a = lorakit([
      "convert",
      "--from",
      join(g, "peft-llama-rslora-all", "adapter"),
      "--to",
      gguf,
      "--base",
      join(g, "base", "llama"),
    ]);
    expect(a.stderr).not.toMatch(/error/i);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/convert: 14 LoRA modules → GGUF LoRA/);
    expect(parseGguf(new Uint8Array(readFileSync(gguf))).metadata.get("adapter.lora.alpha")?.value).toBe(16);
    const dir = tmpFile("cli-rslora-peft");
    const b = lorakit(["convert", "--from", gguf, "--to", dir, "--base", join(g, "base", "llama")]);
    expect(b.code).toBe(0);
    const back = loadPeftAdapter({
      config: readFileSync(join(dir, "adapter_config.json"), "utf8"),
      weights: new Uint8Array(readFileSync(join(dir, "adapter_model.safetensors"))),
    });
    expect(back.modules).toHaveLength(14);
    const src = join(g, "peft-llama-rslora-all", "adapter");
    const orig = loadPeftAdapter({
      config: readFileSync(join(src, "adapter_config.json"), "utf8"),
      weights: new Uint8Array(readFileSync(join(src, "adapter_model.safetensors"))),
    });
    // the rsLoRA factor alpha/√r = 2 is folded into up; down is unchanged
    for (const m of back.modules) {
      const o = orig.modules.find((x) => x.modulePath === m.modulePath)!;
      expect(o.scaling).toBe(2);
      expect(m.down.data).toEqual(o.down.data);
      for (let i = 0; i < o.up.data.length; i++)
        expect(m.scaling * m.up.data[i]!).toBeCloseTo(o.scaling * o.up.data[i]!, 6);
    }
  });
  it("PEFT → .onnx_adapter equals adapterToOnnx bit for bit (f32 and f16), scaling folded", () => {
    const src = join(g, "peft-llama-rslora-all", "adapter");
    const orig = loadPeftAdapter({
      config: readFileSync(join(src, "adapter_config.json"), "utf8"),
      weights: new Uint8Array(readFileSync(join(src, "adapter_model.safetensors"))),
    });
    for (const dtype of ["F32", "F16"] as const) {
      const out = tmpFile(`cli-rslora-${dtype}.onnx_adapter`);
      const r = lorakit(["convert", "--from", src, "--to", out, "--dtype", dtype.toLowerCase()]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`convert: 14 LoRA modules \\(${dtype}\\) → ONNX Runtime adapter`));
      const file = new Uint8Array(readFileSync(out));
      const lib = adapterToOnnx(orig, { dtype });
      const got = parseOnnxAdapter(file).parameters;
      const want = parseOnnxAdapter(lib).parameters;
      expect(got.map((p) => [p.name, p.dims, p.dataType])).toEqual(want.map((p) => [p.name, p.dims, p.dataType]));
      for (let i = 0; i < want.length; i++) expect(Buffer.compare(got[i]!.data, want[i]!.data)).toBe(0);
      const mods = onnxAdapterModules(file);
      const libMods = onnxAdapterModules(lib);
      expect(mods).toHaveLength(14);
      for (let i = 0; i < mods.length; i++) {
        expect(mods[i]!.down.data).toEqual(libMods[i]!.down.data);
        expect(mods[i]!.up.data).toEqual(libMods[i]!.up.data);
      }
      if (dtype === "F32") {
        // rsLoRA alpha/√r = 2 is folded into up, exactly (a power of two)
        for (const m of mods) {
          const o = orig.modules.find((x) => x.modulePath === m.modulePath)!;
          expect(m.down.data).toEqual(o.down.data);
          expect(m.up.data).toEqual(o.up.data.map((v) => o.scaling * v));
        }
      }
    }
  });
  it("GGUF LoRA → .onnx_adapter equals PEFT → .onnx_adapter (f32 GGUF, the rsLoRA factor 2 is exact)", () => {
    const src = join(g, "peft-llama-rslora-all", "adapter");
    const llama = join(g, "base", "llama");
    const gguf = tmpFile("cli-onnx-src.gguf");
    expect(lorakit(["convert", "--from", src, "--to", gguf, "--base", llama]).code).toBe(0);
    const a = tmpFile("cli-from-peft.onnx_adapter");
    const b = tmpFile("cli-from-gguf.onnx_adapter");
    expect(lorakit(["convert", "--from", src, "--to", a]).code).toBe(0);
    const r = lorakit(["convert", "--from", gguf, "--to", b, "--base", llama]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const want = onnxAdapterModules(new Uint8Array(readFileSync(a)));
    const got = onnxAdapterModules(new Uint8Array(readFileSync(b)));
    expect(got.map((m) => m.modulePath).sort()).toEqual(want.map((m) => m.modulePath).sort());
    for (const m of got) {
      const w = want.find((x) => x.modulePath === m.modulePath)!;
      expect(m.down.data).toEqual(w.down.data);
      expect(m.up.data).toEqual(w.up.data);
    }
  });
  it("refuses DoRA to .onnx_adapter with its code, and an adapter-only --dtype, with exit code 2", () => {
    const out = tmpFile("d.onnx_adapter");
    const d = lorakit(["convert", "--from", join(g, "peft-llama-dora", "adapter"), "--to", out]);
    expect(d.code).toBe(2);
    expect(d.stdout).toBe("");
    expect(d.stderr.trim().split("\n")).toHaveLength(1);
    expect(d.stderr).toMatch(/is DoRA .*an ONNX Runtime adapter cannot express it \[unsupported_format\]/);
    const b = lorakit(["convert", "--from", join(g, "peft-llama-basic", "adapter"), "--to", out, "--dtype", "q8_0"]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--dtype must be one of f32, f16, bf16, got "q8_0"/);
  });
  it("an output it cannot write is one line with its code, exit 2: a folder that is a file, a target that is a folder", () => {
    const file = tmpFile("plain-file");
    writeFileSync(file, "x");
    const folder = tmpFile("a-folder.gguf");
    mkdirSync(folder, { recursive: true });
    const basic = join(g, "peft-llama-basic", "adapter");
    const llama = join(g, "base", "llama");
    for (const [args, why] of [
      [["--from", basic, "--to", join(file, "x.gguf"), "--base", llama], `its folder ${file} does not exist`],
      [["--from", basic, "--to", join(file, "x.onnx_adapter")], `its folder ${file} does not exist`],
      [["--from", llama, "--to", join(file, "m.gguf")], `its folder ${file} does not exist`],
      [["--from", basic, "--to", folder, "--base", llama], "it is a folder (EISDIR)"],
    ] as const) {
      const r = lorakit(["convert", ...args]);
      expect([r.code, r.stdout], args.join(" ")).toEqual([2, ""]);
      expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
      expect(r.stderr, args.join(" ")).toContain(`cannot write `);
      expect(r.stderr, args.join(" ")).toContain(why);
      expect(r.stderr, args.join(" ")).toMatch(/; nothing was written \[invalid_output\]\n$/);
    }
  });
  it("a malformed --base config.json is one line naming the field and its value, exit 2", () => {
    const cfg = JSON.parse(readFileSync(join(g, "base", "llama", "config.json"), "utf8"));
    const basic = join(g, "peft-llama-basic", "adapter");
    const cases: [string, string][] = [
      ["{not json", "not valid JSON"],
      ["[1, 2]", "is an array, expected an object (path: <root>)"],
      [
        JSON.stringify({ ...cfg, num_attention_heads: 0 }),
        "num_attention_heads must be a positive integer (a head count), got 0 (path: num_attention_heads)",
      ],
      [
        JSON.stringify({ ...cfg, num_attention_heads: 2.5 }),
        "num_attention_heads must be a positive integer (a head count), got 2.5",
      ],
      [
        JSON.stringify({ ...cfg, num_attention_heads: "4" }),
        'num_attention_heads must be a positive integer (a head count), got "4"',
      ],
      [
        JSON.stringify({ ...cfg, num_key_value_heads: -4 }),
        "num_key_value_heads must be a positive integer (a head count), got -4",
      ],
      [
        JSON.stringify({ ...cfg, num_key_value_heads: 3 }),
        "num_key_value_heads must divide num_attention_heads = 4, got 3",
      ],
    ];
    cases.forEach(([text, why], i) => {
      const dir = tmpFile(`bad-base-${i}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "config.json"), text);
      const r = lorakit(["convert", "--from", basic, "--to", tmpFile(`bad-base-${i}.gguf`), "--base", dir]);
      expect([r.code, r.stdout], text).toEqual([2, ""]);
      expect(r.stderr.trim().split("\n"), text).toHaveLength(1);
      expect(r.stderr, text).toContain(`lorakit convert: ${join(dir, "config.json")}: `);
      expect(r.stderr, text).toContain(why);
      expect(r.stderr, text).toMatch(/\[invalid_config\]\n$/);
    });
    // head counts that are integers but do not fit the model's rows
    const dir = tmpFile("bad-base-rows");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, num_attention_heads: 3, num_key_value_heads: 3 }));
    const r = lorakit(["convert", "--from", basic, "--to", tmpFile("bad-base-rows.gguf"), "--base", dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /"blk\.0\.attn_q" has 64 output rows, expected a multiple of 2·nHead = 6 .*\[invalid_metadata\]\n$/,
    );
  });
  it("a convert to a PEFT folder that fails replaces neither file, and leaves no temporaries", () => {
    const llama = join(g, "base", "llama");
    const gguf = tmpFile("half-written.gguf");
    expect(
      lorakit(["convert", "--from", join(g, "peft-llama-basic", "adapter"), "--to", gguf, "--base", llama]).code,
    ).toBe(0);
    const dir = tmpFile("half-written-peft");
    mkdirSync(join(dir, "adapter_model.safetensors"), { recursive: true });
    writeFileSync(join(dir, "adapter_config.json"), "old config");
    const r = lorakit(["convert", "--from", gguf, "--to", dir, "--base", llama]);
    expect([r.code, r.stdout]).toEqual([2, ""]);
    expect(r.stderr).toBe(
      `lorakit convert: convert: cannot write ${join(dir, "adapter_model.safetensors")}: it is a folder (EISDIR); nothing was written [invalid_output]\n`,
    );
    expect(readFileSync(join(dir, "adapter_config.json"), "utf8")).toBe("old config");
    expect(readdirSync(dir).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
  });
  it("model folder → GGUF (q8_0)", () => {
    const out = tmpFile("cli-gpt2.gguf");
    const r = lorakit(["convert", "--from", join(g, "base", "gpt2"), "--to", out, "--dtype", "q8_0"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tensors \(gpt2, Q8_0\)/);
    expect(parseGguf(new Uint8Array(readFileSync(out))).info("blk.0.ffn_up.weight").type.name).toBe("Q8_0");
  });
  it("refuses DoRA by name, and an unknown architecture, with exit code 2", () => {
    const d = lorakit([
      "convert",
      "--from",
      join(g, "peft-llama-dora", "adapter"),
      "--to",
      tmpFile("d.gguf"),
      "--arch",
      "llama",
    ]);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/is DoRA .*cannot express it \[unsupported_format\]/);
    const u = lorakit([
      "convert",
      "--from",
      join(g, "peft-llama-basic", "adapter"),
      "--to",
      tmpFile("u.gguf"),
      "--arch",
      "rwkv",
    ]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/"rwkv" is not one lorakit converts .*\[unsupported_architecture\]/);
    const m = lorakit(["convert", "--from", join(g, "peft-llama-basic", "adapter")]);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/--from and --to are required/);
  });
  it("lorakit merge into a .gguf base, from a .gguf LoRA, equals the merge from the PEFT folder", () => {
    const base = tmpFile("cli-merge-base.gguf");
    expect(lorakit(["convert", "--from", join(g, "base", "llama"), "--to", base, "--dtype", "f32"]).code).toBe(0);
    const lora = tmpFile("cli-merge-lora.gguf");
    const adapter = join(g, "peft-llama-patterns", "adapter");
    expect(lorakit(["convert", "--from", adapter, "--to", lora, "--base", join(g, "base", "llama")]).code).toBe(0);
    const a = tmpFile("cli-merged-a.gguf");
    const b = tmpFile("cli-merged-b.gguf");
    const ra = lorakit(["merge", "--base", base, "--adapter", adapter, "--out", a]);
    expect(ra.code).toBe(0);
    expect(ra.stdout).toMatch(/wrote .*cli-merged-a\.gguf: 21 tensors, 6 merged/);
    expect(lorakit(["merge", "--base", base, "--adapter", lora, "--out", b]).code).toBe(0);
    const ga = parseGguf(new Uint8Array(readFileSync(a)));
    const gb = parseGguf(new Uint8Array(readFileSync(b)));
    for (const n of ga.names()) {
      const x = ga.toFloat32(n);
      const y = gb.toFloat32(n);
      for (let i = 0; i < x.length; i++)
        expect(Math.abs(x[i]! - y[i]!), n).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(x[i]!)));
    }
  });
});

describe("lorakit convert of an MLX-LM folder into itself", () => {
  const mlxFolder = (name: string): string => {
    const dir = tmpFile(name);
    mkdirSync(dir, { recursive: true });
    const config = JSON.stringify({ fine_tune_type: "lora", lora_parameters: { rank: 2, scale: 20 } });
    writeFileSync(join(dir, "adapter_config.json"), config);
    const weights = serializeSafetensors(
      new Map([
        ["model.layers.0.self_attn.v_proj.lora_a", { dtype: "F32", shape: [8, 2], data: new Float32Array(16).fill(1) }],
        ["model.layers.0.self_attn.v_proj.lora_b", { dtype: "F32", shape: [2, 8], data: new Float32Array(16).fill(2) }],
      ]),
    );
    writeFileSync(join(dir, "adapters.safetensors"), weights);
    return dir;
  };

  it("is refused as output_is_input, the folder untouched; through a link too", () => {
    const dir = mlxFolder("mlx-self");
    const before = readFileSync(join(dir, "adapter_config.json"), "utf8");
    const link = tmpFile("mlx-self-link");
    symlinkSync(dir, link);
    for (const [to, how] of [
      [dir, ""],
      [`${dir}/`, ""],
      [link, " (through a link)"],
    ] as const) {
      const r = lorakit(["convert", "--from", dir, "--to", to]);
      expect([r.code, r.stdout], to).toEqual([2, ""]);
      expect(r.stderr, to).toBe(
        `lorakit convert: convert: --to ${to} is the input's folder ${dir}${how}; writing the PEFT files there would replace its adapter_config.json — choose another folder; nothing was written [output_is_input]\n`,
      );
    }
    const r = lorakit(["convert", "--from", join(dir, "adapters.safetensors"), "--to", dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is the input's folder .*\[output_is_input\]\n$/);
    expect(readFileSync(join(dir, "adapter_config.json"), "utf8")).toBe(before);
    expect(readdirSync(dir).sort()).toEqual(["adapter_config.json", "adapters.safetensors"]);
  });

  it("into another folder it writes the PEFT adapter", () => {
    const dir = mlxFolder("mlx-other");
    const out = tmpFile("mlx-other-peft");
    const r = lorakit(["convert", "--from", dir, "--to", out]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
  });
});

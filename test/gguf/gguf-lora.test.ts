// PEFT / MLX ⇄ GGUF LoRA without llama.cpp: names and shapes against llama.cpp's own converter's files, ΔW against
// PEFT's ΔW (and against llama.cpp's converter where it is right), round trips, and every refusal.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AdapterFormatError, GgufError } from "../../src/errors.js";
import { parseGguf, serializeGguf } from "../../src/io/gguf.js";
import { adapterToGguf, ggufToAdapter, modulesToPeft } from "../../src/io/gguf-lora.js";
import { GGUF_ARCHITECTURES, ggufNameOf, hfModuleOf, permuteHeadRows } from "../../src/io/gguf-names.js";
import { loadMlxAdapter } from "../../src/io/mlx-adapter.js";
import { loadPeftAdapter, type PeftModuleAdapter } from "../../src/io/peft-adapter.js";
import { serializeSafetensors } from "../../src/io/safetensors.js";
import { crossCheck, GOLDEN } from "./helpers.js";

const HEADS = { nHead: 4, nHeadKv: 4 };

function peft(variant: string) {
  const dir = join(GOLDEN!, variant, "adapter");
  return loadPeftAdapter({
    config: readFileSync(join(dir, "adapter_config.json"), "utf8"),
    weights: new Uint8Array(readFileSync(join(dir, "adapter_model.safetensors"))),
  });
}

/** ΔW [dOut, dIn] (torch layout) of a module: scaling · upᵀ · downᵀ, in float64. */
function deltaOf(m: PeftModuleAdapter): Float64Array {
  const dIn = m.down.rows;
  const dOut = m.up.cols;
  const out = new Float64Array(dOut * dIn);
  for (let o = 0; o < dOut; o++)
    for (let i = 0; i < dIn; i++) {
      let s = 0;
      for (let k = 0; k < m.r; k++) s += m.down.data[i * m.r + k]! * m.up.data[k * dOut + o]!;
      out[o * dIn + i] = m.scaling * s;
    }
  return out;
}

/** ΔW [dOut, dIn] of a GGUF pair with llama.cpp's scale: scale · b · a (b row-major [dOut, r], a [r, dIn]). */
function ggufDelta(g: ReturnType<typeof parseGguf>, base: string): Float64Array {
  const a = g.toFloat32(`${base}.lora_a`);
  const b = g.toFloat32(`${base}.lora_b`);
  const [dIn, r] = g.info(`${base}.lora_a`).shape as [number, number];
  const dOut = g.info(`${base}.lora_b`).shape[1]!;
  const alpha = Number(g.metadata.get("adapter.lora.alpha")?.value ?? 0);
  const scale = alpha !== 0 ? Math.fround(alpha / r) : 1;
  const out = new Float64Array(dOut * dIn);
  for (let o = 0; o < dOut; o++)
    for (let i = 0; i < dIn; i++) {
      let s = 0;
      for (let k = 0; k < r; k++) s += b[o * r + k]! * a[k * dIn + i]!;
      out[o * dIn + i] = scale * s;
    }
  return out;
}

function expectCloseArrays(x: Float64Array, y: Float64Array, what: string): void {
  expect(x.length, what).toBe(y.length);
  let scale = 0;
  for (const v of y) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < x.length; i++)
    if (Math.abs(x[i]! - y[i]!) > 1e-5 * scale + 1e-12)
      throw new Error(`${what}: [${i}] ${x[i]} vs ${y[i]} (max |ΔW| ${scale})`);
}

describe("gguf-names", () => {
  it("maps every layer module both ways, for every architecture", () => {
    const paths: Record<string, string[]> = {
      llama: [
        "model.layers.3.self_attn.q_proj",
        "model.layers.0.mlp.down_proj",
        "model.embed_tokens",
        "lm_head",
        "model.norm",
      ],
      qwen2: ["model.layers.1.self_attn.k_proj", "model.layers.1.mlp.gate_proj"],
      gemma: ["model.layers.1.self_attn.o_proj", "model.layers.0.post_attention_layernorm"],
      phi3: ["model.layers.2.self_attn.qkv_proj", "model.layers.2.mlp.gate_up_proj"],
      gpt2: [
        "transformer.h.1.attn.c_attn",
        "transformer.h.0.mlp.c_proj",
        "transformer.wte",
        "transformer.wpe",
        "lm_head",
      ],
    };
    expect(Object.keys(paths).sort()).toEqual([...GGUF_ARCHITECTURES].sort());
    for (const [arch, list] of Object.entries(paths))
      for (const p of list) {
        const g = ggufNameOf(arch as never, p);
        expect(g, `${arch} ${p}`).not.toBeNull();
        expect(hfModuleOf(arch as never, g!), `${arch} ${g}`).toBe(p);
      }
    expect(ggufNameOf("llama", "model.layers.0.self_attn.q_proj")).toBe("blk.0.attn_q");
    expect(ggufNameOf("gpt2", "transformer.h.1.attn.c_attn")).toBe("blk.1.attn_qkv");
    expect(ggufNameOf("phi3", "model.layers.0.mlp.gate_up_proj")).toBe("blk.0.ffn_up");
    expect(ggufNameOf("llama", "model.layers.0.self_attn.rotary_emb")).toBeNull();
  });
  it("permuteHeadRows: (h, 2, d/2) → (h, d/2, 2) and its inverse", () => {
    const x = Float32Array.from({ length: 16 * 3 }, (_, i) => i);
    const p = permuteHeadRows(x, 16, 3, 2);
    // head 0, rows 0..7: HF order [0,1,2,3 | 4,5,6,7] → GGUF order [0,4,1,5,2,6,3,7]
    expect([...p.subarray(0, 24)].filter((_, i) => i % 3 === 0).map((v) => v / 3)).toEqual([0, 4, 1, 5, 2, 6, 3, 7]);
    expect(permuteHeadRows(p, 16, 3, 2, true)).toEqual(x);
  });
});

describe.skipIf(GOLDEN === null)("PEFT → GGUF LoRA on the golden adapters", () => {
  const variants = GOLDEN
    ? readdirSync(GOLDEN).filter((v) => {
        try {
          readFileSync(join(GOLDEN!, v, "llamacpp-gguf", "adapter.gguf"));
          return !v.includes("gpt2") && !v.includes("bf16");
        } catch {
          return false;
        }
      })
    : [];
  for (const v of variants) {
    it(`${v}: names and shapes equal llama.cpp's converter's; ΔW equals PEFT's; round trip is exact`, async () => {
      const adapter = peft(v);
      const bytes = adapterToGguf(adapter, { architecture: "llama", heads: HEADS });
      const ours = parseGguf(bytes);
      await crossCheck(bytes, ours);
      const theirs = parseGguf(new Uint8Array(readFileSync(join(GOLDEN!, v, "llamacpp-gguf", "adapter.gguf"))));
      expect(ours.metadata.get("general.type")?.value).toBe("adapter");
      expect(ours.metadata.get("adapter.type")?.value).toBe("lora");
      expect(ours.metadata.get("general.architecture")?.value).toBe("llama");
      const R = Math.max(...adapter.modules.map((m) => m.r));
      expect(ours.metadata.get("adapter.lora.alpha")).toEqual({ type: "f32", value: R });
      expect(ours.names().sort()).toEqual(theirs.names().sort());
      // the non-rank dimension (lora_a ne[0] = dIn, lora_b ne[1] = dOut) as llama.cpp's; ranks padded to R
      for (const n of theirs.names()) {
        const k = n.endsWith("lora_a") ? 0 : 1;
        expect(ours.info(n).shape[k], n).toBe(theirs.info(n).shape[k]);
        expect(ours.info(n).shape[1 - k], n).toBe(R);
      }
      for (const m of adapter.modules) {
        const base = `${ggufNameOf("llama", m.modulePath)}.weight`;
        const peftDelta = deltaOf(m);
        // llama.cpp order of ΔW rows is permuted for q/k: undo it before comparing with PEFT's ΔW
        const [dOut, dIn] = [m.up.cols, m.down.rows];
        const heads = /attn_[qk]\./.test(base) ? 4 : 0;
        const unperm = (d: Float64Array) =>
          heads ? Float64Array.from(permuteHeadRows(Float32Array.from(d), dOut, dIn, heads, true)) : d;
        expectCloseArrays(unperm(ggufDelta(ours, base)), peftDelta, `${v} ${base} (lorakit)`);
        // llama.cpp's own file agrees where its single alpha/r is the module's scaling (no rsLoRA, no patterns)
        if (Math.abs(Number(theirs.metadata.get("adapter.lora.alpha")?.value) / m.r - m.scaling) < 1e-12)
          expectCloseArrays(unperm(ggufDelta(theirs, base)), peftDelta, `${v} ${base} (llama.cpp)`);
      }
      // GGUF → modules → PEFT files → loadPeftAdapter: the same ΔW, the same ranks
      const back = ggufToAdapter(bytes, { heads: HEADS });
      const reloaded = loadPeftAdapter({
        config: modulesToPeft(back.modules).configJson,
        weights: modulesToPeft(back.modules).weights,
      });
      for (const m of adapter.modules) {
        const r = reloaded.modules.find((x) => x.modulePath === m.modulePath)!;
        expect(r.r, m.modulePath).toBe(m.r);
        expectCloseArrays(deltaOf(r), deltaOf(m), `${v} ${m.modulePath} round trip`);
      }
    });
  }

  it("gpt2 Conv1D adapter: lora_a ne[0] is the input size (llama.cpp's converter writes the output size)", () => {
    const adapter = peft("peft-gpt2-conv1d");
    const ours = parseGguf(adapterToGguf(adapter, { architecture: "GPT2LMHeadModel" }));
    expect(ours.info("blk.0.attn_qkv.weight.lora_a").shape).toEqual([64, 8]);
    expect(ours.info("blk.0.attn_qkv.weight.lora_b").shape).toEqual([8, 192]);
    const back = ggufToAdapter(adapterToGguf(adapter, { architecture: "gpt2" }));
    expect(back.modules.every((m) => m.fanInFanOut)).toBe(true);
  });

  it("refuses DoRA, modules_to_save and trained biases by name", () => {
    for (const [v, re] of [
      ["peft-llama-dora", /is DoRA .*cannot express it/],
      ["peft-gpt2-bias", /trained bias .*cannot express it/],
    ] as const) {
      const a = peft(v);
      expect(() => adapterToGguf(a, { architecture: a.config.fanInFanOut ? "gpt2" : "llama", heads: HEADS })).toThrow(
        expect.objectContaining({ code: "unsupported_format", message: expect.stringMatching(re) }),
      );
    }
    const a = peft("peft-llama-basic");
    const withMts = {
      ...a,
      modulesToSave: new Map([["lm_head.weight", { dtype: "F32" as const, shape: [1], data: new Float32Array(1) }]]),
    };
    expect(() => adapterToGguf(withMts, { architecture: "llama", heads: HEADS })).toThrow(/modules_to_save copy/);
  });
});

describe("errors and MLX", () => {
  const mlxWeights = serializeSafetensors(
    new Map([
      [
        "model.layers.0.self_attn.v_proj.lora_a",
        { dtype: "F32", shape: [32, 2], data: Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)) },
      ],
      [
        "model.layers.0.self_attn.v_proj.lora_b",
        { dtype: "F32", shape: [2, 16], data: Float32Array.from({ length: 32 }, (_, i) => Math.cos(i)) },
      ],
    ]),
  );
  const mlx = loadMlxAdapter({ config: { lora_parameters: { rank: 2, scale: 20 } }, weights: mlxWeights });

  it("MLX → GGUF: ΔW uses MLX's scale; MLX → PEFT keeps it", () => {
    const g = parseGguf(adapterToGguf(mlx, { architecture: "mistral" }));
    expect(g.metadata.get("general.architecture")?.value).toBe("llama");
    expectCloseArrays(ggufDelta(g, "blk.0.attn_v.weight"), deltaOf(mlx.modules[0]!), "mlx v_proj");
    const p = modulesToPeft(mlx.modules);
    const re = loadPeftAdapter({ config: p.configJson, weights: p.weights });
    expect(re.modules[0]!.scaling).toBe(20);
    expectCloseArrays(deltaOf(re.modules[0]!), deltaOf(mlx.modules[0]!), "mlx → peft");
  });

  it("unsupported_architecture, missing head counts, unexpected modules", () => {
    expect(() => adapterToGguf(mlx, { architecture: "mamba" })).toThrow(
      expect.objectContaining({
        code: "unsupported_architecture",
        message: expect.stringMatching(/"mamba" is not one lorakit converts/),
      }),
    );
    const q = { ...mlx, modules: [{ ...mlx.modules[0]!, modulePath: "model.layers.0.self_attn.q_proj" }] };
    expect(() => adapterToGguf(q, { architecture: "llama" })).toThrow(
      expect.objectContaining({
        code: "invalid_metadata",
        message: expect.stringMatching(/blk\.0\.attn_q needs the attention head counts/),
      }),
    );
    const odd = { ...mlx, modules: [{ ...mlx.modules[0]!, modulePath: "model.layers.0.self_attn.rotary" }] };
    expect(() => adapterToGguf(odd, { architecture: "llama" })).toThrow(AdapterFormatError);
  });

  it("ggufToAdapter refuses non-adapters, half pairs and mismatched pairs", () => {
    const md = (type: string) => ({
      "general.architecture": { type: "string" as const, value: "llama" },
      "general.type": { type: "string" as const, value: type },
      "adapter.type": { type: "string" as const, value: "lora" },
    });
    const t = (name: string, shape: number[]) => ({
      name,
      shape,
      type: "F32",
      data: new Uint8Array(4 * shape[0]! * shape[1]!),
    });
    const check = (bytes: Uint8Array, code: string, re: RegExp) => {
      let err: unknown;
      try {
        ggufToAdapter(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GgufError);
      expect((err as GgufError).code).toBe(code);
      expect((err as Error).message).toMatch(re);
    };
    check(serializeGguf(md("model"), []), "invalid_metadata", /general\.type is "model", expected "adapter"/);
    check(serializeGguf(md("adapter"), [t("blk.0.attn_v.weight.lora_a", [8, 2])]), "missing_tensor", /no lora_b/);
    check(
      serializeGguf(md("adapter"), [t("blk.0.attn_v.weight.lora_a", [8, 2]), t("blk.0.attn_v.weight.lora_b", [3, 8])]),
      "tensor_invalid_info",
      /lora_a ne \[8, 2\] and lora_b ne \[3, 8\]/,
    );
    check(serializeGguf(md("adapter"), [t("blk.0.attn_v.weight", [8, 2])]), "unexpected_tensor", /not a LoRA factor/);
  });
});

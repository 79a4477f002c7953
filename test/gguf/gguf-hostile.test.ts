// Hostile and malformed GGUF LoRA adapters and conversion inputs: each refusal with its code and message.

import { describe, expect, it } from "vitest";
import { serializeGguf } from "../../src/io/gguf.js";
import { adapterToGguf, ggufToAdapter } from "../../src/io/gguf-lora.js";
import { ggufArchitectureOf, ggufNameOf, permuteHeadRows } from "../../src/io/gguf-names.js";
import type { GgufValue } from "../../src/io/gguf-types.js";
import { loadMlxAdapter } from "../../src/io/mlx-adapter.js";
import { serializeSafetensors } from "../../src/io/safetensors.js";

function caught(f: () => unknown): { code?: string; message: string; name: string } {
  try {
    f();
  } catch (e) {
    return e as { code?: string; message: string; name: string };
  }
  throw new Error("expected a throw");
}

function adapterMd(arch: string, extra: Record<string, GgufValue> = {}): Record<string, GgufValue> {
  return {
    "general.architecture": { type: "string", value: arch },
    "general.type": { type: "string", value: "adapter" },
    "adapter.type": { type: "string", value: "lora" },
    ...extra,
  };
}

describe("architecture names that are Object.prototype members", () => {
  it.each(["constructor", "__proto__", "toString", "hasOwnProperty"])("%s is unsupported_architecture", (arch) => {
    expect(ggufArchitectureOf(arch)).toBeUndefined();
    const e = caught(() => ggufToAdapter(serializeGguf(adapterMd(arch), [])));
    expect(e.name).toBe("GgufError");
    expect(e.code).toBe("unsupported_architecture");
    expect(e.message).toBe(
      `ggufToAdapter: architecture "${arch}" is not one lorakit converts (llama, mistral, qwen2, gemma, phi3, gpt2)`,
    );
  });

  it("a module path named like a prototype member has no GGUF name", () => {
    expect(ggufNameOf("llama", "constructor")).toBeNull();
    expect(ggufNameOf("gpt2", "transformer.toString")).toBeNull();
  });
});

function mlxModule(path: string, dIn: number, dOut: number, r = 2) {
  return loadMlxAdapter({
    config: { lora_parameters: { rank: r, scale: 2 } },
    weights: serializeSafetensors(
      new Map([
        [
          `${path}.lora_a`,
          { dtype: "F32", shape: [dIn, r], data: Float32Array.from({ length: dIn * r }, (_, i) => Math.sin(i)) },
        ],
        [
          `${path}.lora_b`,
          { dtype: "F32", shape: [r, dOut], data: Float32Array.from({ length: r * dOut }, (_, i) => Math.cos(i)) },
        ],
      ]),
    ),
  });
}

describe("attention head counts", () => {
  it.each([0, -4, 2.5, Number.NaN, Number.POSITIVE_INFINITY])("permuteHeadRows refuses nHead %s", (n) => {
    const e = caught(() => permuteHeadRows(new Float32Array(16), 8, 2, n));
    expect([e.name, e.code]).toEqual(["ArgumentError", "invalid_argument"]);
    expect(e.message).toBe(`permuteHeadRows: nHead is ${n}, expected a positive integer (an attention head count)`);
  });

  it("permuteHeadRows refuses rows that do not split into heads of an even size", () => {
    const e = caught(() => permuteHeadRows(new Float32Array(24), 12, 2, 4));
    expect([e.name, e.code]).toEqual(["GgufError", "invalid_metadata"]);
    expect(e.message).toBe(
      "permuteHeadRows: 12 rows do not split into 4 heads of an even size, expected a multiple of 2·nHead = 8",
    );
  });

  it("adapterToGguf names the head count field and the module whose rows do not fit", () => {
    const q = mlxModule("model.layers.0.self_attn.q_proj", 8, 16);
    const k = mlxModule("model.layers.0.self_attn.k_proj", 8, 16);
    let e = caught(() => adapterToGguf(q, { architecture: "llama", heads: { nHead: 0, nHeadKv: 4 } }));
    expect([e.name, e.code]).toEqual(["ArgumentError", "invalid_argument"]);
    expect(e.message).toBe("adapterToGguf: heads.nHead is 0, expected a positive integer (an attention head count)");
    e = caught(() => adapterToGguf(k, { architecture: "llama", heads: { nHead: 4, nHeadKv: -2 } }));
    expect(e.message).toBe("adapterToGguf: heads.nHeadKv is -2, expected a positive integer (an attention head count)");
    e = caught(() => adapterToGguf(q, { architecture: "llama", heads: { nHead: 3, nHeadKv: 3 } }));
    expect([e.name, e.code]).toEqual(["GgufError", "invalid_metadata"]);
    expect(e.message).toBe(
      'adapterToGguf: "blk.0.attn_q" has 16 output rows, expected a multiple of 2·nHead = 6 (the head counts do not fit this model)',
    );
  });

  it("ggufToAdapter refuses head counts that do not fit the file's Q rows", () => {
    const q = mlxModule("model.layers.0.self_attn.q_proj", 8, 16);
    const bytes = adapterToGguf(q, { architecture: "llama", heads: { nHead: 4, nHeadKv: 4 } });
    let e = caught(() => ggufToAdapter(bytes, { heads: { nHead: 1.5, nHeadKv: 4 } }));
    expect([e.name, e.code]).toEqual(["ArgumentError", "invalid_argument"]);
    expect(e.message).toBe("ggufToAdapter: heads.nHead is 1.5, expected a positive integer (an attention head count)");
    e = caught(() => ggufToAdapter(bytes, { heads: { nHead: 16, nHeadKv: 4 } }));
    expect([e.name, e.code]).toEqual(["GgufError", "invalid_metadata"]);
    expect(e.message).toMatch(
      /^ggufToAdapter: "blk\.0\.attn_q\.weight" has 16 output rows, expected a multiple of 2·nHead = 32/,
    );
  });
});

function pair(base: string, dIn: number, r: number, dOut: number) {
  return [
    { name: `${base}.lora_a`, shape: [dIn, r], type: "F32", data: new Uint8Array(4 * dIn * r).fill(1) },
    { name: `${base}.lora_b`, shape: [r, dOut], type: "F32", data: new Uint8Array(4 * r * dOut).fill(1) },
  ];
}

describe("adapter.lora.alpha and the rank", () => {
  it.each([
    ["NaN", { type: "f32", value: Number.NaN }],
    ["Infinity", { type: "f32", value: Number.POSITIVE_INFINITY }],
    ["-Infinity", { type: "f64", value: Number.NEGATIVE_INFINITY }],
  ] as const)("alpha %s is refused", (shown, alpha) => {
    const bytes = serializeGguf(
      adapterMd("llama", { "adapter.lora.alpha": alpha }),
      pair("blk.0.attn_v.weight", 8, 2, 8),
    );
    const e = caught(() => ggufToAdapter(bytes));
    expect([e.name, e.code]).toEqual(["GgufError", "invalid_metadata"]);
    expect(e.message).toBe(`ggufToAdapter: adapter.lora.alpha is ${shown}, expected a finite number`);
  });

  it("an alpha whose alpha / r overflows float32 is refused, naming the pair", () => {
    const bytes = serializeGguf(
      adapterMd("llama", { "adapter.lora.alpha": { type: "f64", value: 1e308 } }),
      pair("blk.0.attn_v.weight", 8, 2, 8),
    );
    const e = caught(() => ggufToAdapter(bytes));
    expect([e.name, e.code]).toEqual(["GgufError", "invalid_metadata"]);
    expect(e.message).toBe(
      'ggufToAdapter: adapter.lora.alpha 1e+308 / rank 2 of "blk.0.attn_v.weight" is Infinity in float32, expected a finite scale',
    );
  });

  it("rank 0 (and any empty dimension) is refused, naming the pair", () => {
    const md = adapterMd("llama", { "adapter.lora.alpha": { type: "f32", value: 8 } });
    let e = caught(() => ggufToAdapter(serializeGguf(md, pair("blk.0.attn_v.weight", 8, 0, 8))));
    expect([e.name, e.code]).toEqual(["GgufError", "tensor_invalid_info"]);
    expect(e.message).toBe(
      'ggufToAdapter: "blk.0.attn_v.weight" has lora_a ne [8, 0] and lora_b ne [0, 8], expected every dimension ≥ 1 (rank 0)',
    );
    e = caught(() => ggufToAdapter(serializeGguf(md, pair("blk.0.attn_v.weight", 0, 2, 8))));
    expect(e.code).toBe("tensor_invalid_info");
    expect(e.message).toMatch(/lora_a ne \[0, 2\] and lora_b ne \[2, 8\], expected every dimension ≥ 1 \(rank 2\)$/);
  });
});

describe("two pairs for one module", () => {
  it("blk.0.attn_v.weight.lora_* and blk.0.attn_v.lora_* are refused as duplicates", () => {
    const md = adapterMd("llama", { "adapter.lora.alpha": { type: "f32", value: 2 } });
    const bytes = serializeGguf(md, [...pair("blk.0.attn_v.weight", 8, 2, 8), ...pair("blk.0.attn_v", 8, 2, 8)]);
    const e = caught(() => ggufToAdapter(bytes));
    expect([e.name, e.code]).toEqual(["GgufError", "duplicate_name"]);
    expect(e.message).toBe(
      'ggufToAdapter: "blk.0.attn_v" and "blk.0.attn_v.weight" both map to module "model.layers.0.self_attn.v_proj", expected one pair per module',
    );
  });
});

describe("many modules", () => {
  it("adapterToGguf of 200k modules reaches its per-module checks (the largest rank is found without a spread)", () => {
    const one = new Float32Array([1]);
    const modules = Array.from({ length: 200_000 }, (_, i) => ({
      modulePath: i === 0 ? "model.layers.0.self_attn.rotary" : `model.layers.${i}.self_attn.v_proj`,
      kind: "linear" as const,
      down: { data: one, rows: 1, cols: 1 },
      up: { data: one, rows: 1, cols: 1 },
      r: 1,
      alpha: 1,
      scaling: 1,
      fanInFanOut: false,
      dtype: "F32" as const,
    }));
    const e = caught(() =>
      adapterToGguf({ format: "mlx", config: {}, modules, warnings: [] }, { architecture: "qwen2" }),
    );
    expect([e.name, e.code]).toEqual(["AdapterFormatError", "unexpected_tensor"]);
    expect(e.message).toBe(
      'adapterToGguf: module "model.layers.0.self_attn.rotary" has no llama.cpp tensor name in architecture qwen2',
    );
  });
});

describe("adapterToGguf refuses what would be written non-finite, naming the module", () => {
  const modulePath = "model.layers.0.self_attn.v_proj";
  const adapterWith = (scaling: unknown, up = Float32Array.of(0.5, -1), down = Float32Array.of(1, 2)) => ({
    format: "mlx" as const,
    config: {},
    warnings: [],
    modules: [
      {
        modulePath,
        kind: "linear" as const,
        down: { data: down, rows: 2, cols: 1 },
        up: { data: up, rows: 1, cols: 2 },
        r: 1,
        alpha: scaling as number,
        scaling: scaling as number,
        fanInFanOut: false,
        dtype: "F32" as const,
      },
    ],
  });

  it.each([
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["-Infinity", Number.NEGATIVE_INFINITY],
  ])("scaling %s is non_finite", (shown, scaling) => {
    const e = caught(() => adapterToGguf(adapterWith(scaling), { architecture: "qwen2" }));
    expect([e.name, e.code]).toEqual(["ArgumentError", "non_finite"]);
    expect(e.message).toBe(
      `adapterToGguf: module "${modulePath}" has scaling ${shown} (alpha ${shown}, r 1), expected a finite number`,
    );
  });

  it("a scaling that is not a number is invalid_value", () => {
    const e = caught(() => adapterToGguf(adapterWith("2"), { architecture: "qwen2" }));
    expect([e.name, e.code]).toEqual(["ArgumentError", "invalid_value"]);
    expect(e.message).toBe(
      `adapterToGguf: module "${modulePath}" has scaling "2" (alpha "2", r 1), expected a finite number`,
    );
  });

  it.each([
    [
      "scaling·up past float32",
      adapterWith(1e38, Float32Array.of(10, 1)),
      "F32",
      "lora_b value 0 is not finite as F32 (scaling 1e+38 · up overflows float32 or up holds a non-finite value)",
    ],
    [
      "a NaN in down",
      adapterWith(1, undefined, Float32Array.of(1, Number.NaN)),
      "F32",
      "lora_a value 1 is not finite as F32 (down holds a non-finite value)",
    ],
    [
      "a value past F16's range",
      adapterWith(1e5),
      "F16",
      "lora_b value 1 is not finite as F16 (-100000 is past F16's range)",
    ],
    [
      "a value past BF16's range",
      adapterWith(3.4e38),
      "BF16",
      "lora_b value 1 is not finite as BF16 (-3.3999999521443642e+38 is past BF16's range)",
    ],
  ] as const)("%s is non_finite", (_, adapter, dtype, what) => {
    const e = caught(() => adapterToGguf(adapter, { architecture: "qwen2", dtype }));
    expect([e.name, e.code]).toEqual(["ArgumentError", "non_finite"]);
    expect(e.message).toBe(
      `adapterToGguf: module "${modulePath}" ${what}, expected finite values; nothing was written`,
    );
  });
});

describe("token_embd with and without the .weight infix", () => {
  const md = adapterMd("llama", { "adapter.lora.alpha": { type: "f32", value: 2 } });
  const values = (n: number) => new Uint8Array(Float32Array.from({ length: n }, (_, i) => i + 1).buffer);
  // the embedding layout: lora_a ne [r, vocab] = down [vocab, r], lora_b ne [r, dim]; r 2, vocab 5, dim 3
  const embd = (base: string, aNe = [2, 5]) => [
    { name: `${base}.lora_a`, shape: aNe, type: "F32", data: values(10) },
    { name: `${base}.lora_b`, shape: [2, 3], type: "F32", data: values(6) },
  ];

  it("token_embd.lora_* is the embedding module, as token_embd.weight.lora_* is", () => {
    const [withInfix] = ggufToAdapter(serializeGguf(md, embd("token_embd.weight"))).modules;
    const [without] = ggufToAdapter(serializeGguf(md, embd("token_embd"))).modules;
    expect(withInfix!.kind).toBe("embedding");
    expect(without).toEqual(withInfix);
    expect([without!.modulePath, without!.down.rows, without!.down.cols, without!.up.cols]).toEqual([
      "model.embed_tokens",
      5,
      2,
      3,
    ]);
  });

  it("a token_embd.lora_* pair in the linear layout is refused as for token_embd.weight", () => {
    const e = caught(() => ggufToAdapter(serializeGguf(md, embd("token_embd", [5, 2]))));
    expect([e.name, e.code]).toEqual(["GgufError", "tensor_invalid_info"]);
    expect(e.message).toBe(
      'ggufToAdapter: "token_embd" has lora_a ne [5, 2] and lora_b ne [2, 3], expected [r, vocab] and [r, embDim]',
    );
  });
});

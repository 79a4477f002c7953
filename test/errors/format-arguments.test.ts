// The adapter format modules' entry points (GGUF, ONNX, MLX) called from JavaScript with null, undefined, {} or a
// wrong type: each answers a coded LoraError naming the function and the argument (they threw raw TypeErrors from
// inside, or RangeErrors from a DataView), and null options mean the defaults (format-arguments-sweep.test.ts checks
// that nothing but LoraErrors comes out for many more values).

import { describe, expect, it } from "vitest";
import {
  adapterToGguf,
  adapterToOnnx,
  ggufElements,
  ggufNameOf,
  ggufToAdapter,
  hfModuleOf,
  loadMlxAdapter,
  mlxScalingRule,
  modulesToPeft,
  onnxAdapterModules,
  onnxParameterToFloat32,
  parseGguf,
  parseGgufHeader,
  parseOnnxAdapter,
  serializeGguf,
  serializeGgufHeader,
  serializeOnnxAdapter,
  serializeSafetensors,
} from "../../src/index.js";
import { codeAndMessage } from "../helpers/errors.js";
import { ARCH, adapter, MLX_CONFIG, MOD, ADAPTER_PATH as PATH } from "./format-fixtures.js";

const at = (i: number) => `adapter.modules[${i}] ("${PATH}")`;
const MODULE_FORM = "an adapter module { modulePath, kind, down, up, r, scaling, … }";
const ADAPTER_FORM = "a loaded adapter { format, modules } (loadPeftAdapter, loadMlxAdapter)";

type Case = [string, () => unknown, string, string];
const CASES: Case[] = [
  // adapterToGguf: the adapter, its modules, the options
  [
    "adapterToGguf(null)",
    () => adapterToGguf(null as never, ARCH),
    "invalid_argument",
    `adapterToGguf: adapter is null, expected ${ADAPTER_FORM}`,
  ],
  [
    "adapterToGguf({})",
    () => adapterToGguf({} as never, ARCH),
    "invalid_argument",
    "adapterToGguf: adapter.modules is undefined, expected an array of adapter modules",
  ],
  [
    "adapterToGguf module null",
    () => adapterToGguf(adapter(null), ARCH),
    "invalid_argument",
    `adapterToGguf: adapter.modules[0] is null, expected ${MODULE_FORM}`,
  ],
  [
    "adapterToGguf modulePath 5",
    () => adapterToGguf(adapter({ ...MOD, modulePath: 5 }), ARCH),
    "invalid_argument",
    "adapterToGguf: adapter.modules[0].modulePath is 5, expected a string",
  ],
  [
    "adapterToGguf kind",
    () => adapterToGguf(adapter({ ...MOD, kind: "conv" }), ARCH),
    "invalid_argument",
    `adapterToGguf: ${at(0)} kind is "conv", expected "linear" or "embedding"`,
  ],
  [
    "adapterToGguf down Float64Array",
    () => adapterToGguf(adapter({ ...MOD, down: { ...MOD.down, data: new Float64Array(2) } }), ARCH),
    "invalid_argument",
    `adapterToGguf: ${at(0)} down is a Float64Array, expected a matrix { data: Float32Array, rows, cols }`,
  ],
  [
    "adapterToGguf down rows",
    () => adapterToGguf(adapter({ ...MOD, down: { ...MOD.down, rows: 3 } }), ARCH),
    "data_length_mismatch",
    `adapterToGguf: ${at(0)} down holds 2 values, expected rows × cols = 3 × 1`,
  ],
  [
    "adapterToGguf r",
    () => adapterToGguf(adapter({ ...MOD, r: 2 }), ARCH),
    "shape_mismatch",
    `adapterToGguf: ${at(0)} has down [2, 1], up [1, 2] and r 2, expected down [dIn, r] and up [r, dOut] with r ≥ 1`,
  ],
  [
    "adapterToGguf magnitude array",
    () => adapterToGguf(adapter({ ...MOD, magnitude: [1, 2] }), ARCH),
    "invalid_argument",
    `adapterToGguf: ${at(0)} magnitude is an array of 2 items, expected undefined or a Float32Array [dOut]`,
  ],
  [
    "adapterToGguf PEFT without modulesToSave",
    () => adapterToGguf({ format: "peft", modules: [MOD] } as never, ARCH),
    "invalid_argument",
    "adapterToGguf: adapter.modulesToSave is undefined, expected a Map (a PEFT adapter's full tensors)",
  ],
  [
    "adapterToGguf(a, undefined)",
    () => adapterToGguf(adapter(MOD), undefined as never),
    "invalid_argument",
    "adapterToGguf: options is undefined, expected { architecture, heads?, dtype?, name? }",
  ],
  [
    "adapterToGguf architecture 5",
    () => adapterToGguf(adapter(MOD), { architecture: 5 as never }),
    "invalid_argument",
    'adapterToGguf: options.architecture is 5, expected a name such as "llama" or "LlamaForCausalLM"',
  ],
  [
    "adapterToGguf dtype",
    () => adapterToGguf(adapter(MOD), { ...ARCH, dtype: "Q8_0" as never }),
    "invalid_argument",
    'adapterToGguf: options.dtype is "Q8_0", expected "F32", "F16", "BF16"',
  ],
  [
    "adapterToGguf name",
    () => adapterToGguf(adapter(MOD), { ...ARCH, name: 5 as never }),
    "invalid_argument",
    "adapterToGguf: options.name is 5, expected a string (general.name)",
  ],
  // ggufToAdapter, modulesToPeft
  [
    "ggufToAdapter(null)",
    () => ggufToAdapter(null as never),
    "invalid_argument",
    "ggufToAdapter: bytes is null, expected a Uint8Array (a GGUF LoRA adapter's bytes)",
  ],
  [
    "ggufToAdapter(bytes, 5)",
    () => ggufToAdapter(adapterToGguf(adapter(MOD), ARCH), 5 as never),
    "invalid_argument",
    "ggufToAdapter: options is 5, expected { heads? }",
  ],
  [
    "modulesToPeft(null)",
    () => modulesToPeft(null as never),
    "invalid_argument",
    "modulesToPeft: modules is null, expected an array of adapter modules",
  ],
  [
    "modulesToPeft(modules, 'x')",
    () => modulesToPeft([MOD], "x" as never),
    "invalid_argument",
    'modulesToPeft: options is "x", expected { fanInFanOut?, baseModelClass? }',
  ],
  // GGUF bytes in and out
  [
    "parseGguf(null)",
    () => parseGguf(null as never),
    "invalid_argument",
    "parseGguf: bytes is null, expected a Uint8Array or an ArrayBuffer (a GGUF file's bytes)",
  ],
  [
    "parseGgufHeader(null, 0)",
    () => parseGgufHeader(null as never, 0),
    "invalid_argument",
    "parseGgufHeader: bytes is null, expected a Uint8Array (the file's first bytes)",
  ],
  [
    "parseGgufHeader(bytes)",
    () => parseGgufHeader(new Uint8Array(8), undefined as never),
    "invalid_argument",
    "parseGgufHeader: fileSize is undefined, expected an integer ≥ 0 (the file's size in bytes)",
  ],
  [
    "serializeGguf(null, [])",
    () => serializeGguf(null as never, []),
    "invalid_argument",
    "serializeGguf: metadata is null, expected a Map or an object of key → { type, value }",
  ],
  [
    "serializeGgufHeader('x', [])",
    () => serializeGgufHeader("x" as never, []),
    "invalid_argument",
    'serializeGguf: metadata is "x", expected a Map or an object of key → { type, value }',
  ],
  [
    "serializeGguf({}, {})",
    () => serializeGguf({}, {} as never),
    "invalid_argument",
    "serializeGguf: tensors is an object, expected an array of { name, shape, type, data }",
  ],
  [
    "serializeGguf({}, [null])",
    () => serializeGguf({}, [null as never]),
    "invalid_argument",
    "serializeGguf: tensors[0] is null, expected { name: string, shape: number[], type, data }",
  ],
  [
    "serializeGguf metadata value null",
    () => serializeGguf({ k: null as never }, []),
    "invalid_metadata",
    'serializeGguf: metadata "k" is null, expected { type, value } with type one of u8, i8, u16, i16, u32, i32, f32, bool, string, array, u64, i64, f64',
  ],
  [
    "serializeGguf metadata type 'x'",
    () => serializeGguf({ k: { type: "x", value: 1 } as never }, []),
    "invalid_metadata",
    'serializeGguf: metadata "k" is an object of type "x", expected { type, value } with type one of u8, i8, u16, i16, u32, i32, f32, bool, string, array, u64, i64, f64',
  ],
  [
    "serializeGguf array value 5",
    () => serializeGguf({ k: { type: "array", itemType: "u8", value: 5 } as never }, []),
    "invalid_metadata",
    'serializeGguf: metadata "k" is array 5, expected a JavaScript array of the items',
  ],
  [
    "serializeGguf tensor data array",
    () => serializeGguf({}, [{ name: "t", shape: [1], type: "F32", data: [0, 0, 0, 0] as never }]),
    "invalid_argument",
    'serializeGguf: tensor "t" data is an array of 4 items, expected a Uint8Array (the encoded bytes)',
  ],
  [
    "serializeGguf tensor type {}",
    () => serializeGguf({}, [{ name: "t", shape: [1], type: {} as never, data: new Uint8Array(4) }]),
    "unsupported_dtype",
    'serializeGguf: tensor "t" has type an object, not a ggml type',
  ],
  [
    "ggufElements(null)",
    () => ggufElements(null as never),
    "invalid_argument",
    "ggufElements: t is null, expected a tensor { shape: number[] }",
  ],
  [
    "ggufNameOf('mamba', …)",
    () => ggufNameOf("mamba" as never, "model.embed_tokens"),
    "unsupported_architecture",
    'ggufNameOf: architecture "mamba" is not one lorakit converts (llama, mistral, qwen2, gemma, phi3, gpt2)',
  ],
  [
    "ggufNameOf('llama', null)",
    () => ggufNameOf("llama", null as never),
    "invalid_argument",
    "ggufNameOf: modulePath is null, expected a string",
  ],
  [
    "hfModuleOf(undefined, …)",
    () => hfModuleOf(undefined as never, "token_embd"),
    "unsupported_architecture",
    "hfModuleOf: architecture undefined is not one lorakit converts (llama, mistral, qwen2, gemma, phi3, gpt2)",
  ],
  [
    "hfModuleOf('llama', 5)",
    () => hfModuleOf("llama", 5 as never),
    "invalid_argument",
    "hfModuleOf: ggufName is 5, expected a string",
  ],
  // MLX
  [
    "loadMlxAdapter(null)",
    () => loadMlxAdapter(null as never),
    "invalid_argument",
    "loadMlxAdapter: files is null, expected { config, weights } (adapter_config.json's text or object, adapters.safetensors' bytes)",
  ],
  [
    "loadMlxAdapter weights null",
    () => loadMlxAdapter({ config: MLX_CONFIG, weights: null as never }),
    "invalid_argument",
    "loadMlxAdapter: files.weights is null, expected a Uint8Array (adapters.safetensors' bytes)",
  ],
  [
    "loadMlxAdapter(files, 5)",
    () => loadMlxAdapter({ config: MLX_CONFIG, weights: serializeSafetensors({}) }, 5 as never),
    "invalid_argument",
    "loadMlxAdapter: options is 5, expected { scaling? }",
  ],
  [
    "mlxScalingRule(null)",
    () => mlxScalingRule(null as never),
    "invalid_argument",
    "mlxScalingRule: config is null, expected an MLX training config (adapter_config.json's object)",
  ],
  // ONNX
  [
    "adapterToOnnx(undefined)",
    () => adapterToOnnx(undefined as never),
    "invalid_argument",
    `adapterToOnnx: adapter is undefined, expected ${ADAPTER_FORM}`,
  ],
  [
    "adapterToOnnx dtype",
    () => adapterToOnnx(adapter(MOD), { dtype: "F64" as never }),
    "invalid_argument",
    'adapterToOnnx: options.dtype is "F64", expected "F32", "F16", "BF16"',
  ],
  [
    "adapterToOnnx adapterVersion",
    () => adapterToOnnx(adapter(MOD), { adapterVersion: 1.5 }),
    "invalid_argument",
    "adapterToOnnx: options.adapterVersion is 1.5, expected an int32",
  ],
  [
    "adapterToOnnx scaling NaN",
    () => adapterToOnnx(adapter({ ...MOD, scaling: Number.NaN })),
    "non_finite",
    `adapterToOnnx: module "${PATH}" has scaling NaN (alpha 1, r 1), expected a finite number`,
  ],
  [
    "adapterToOnnx scaling·up overflow",
    () => adapterToOnnx(adapter({ ...MOD, scaling: 1e39 })),
    "non_finite",
    `adapterToOnnx: module "${PATH}" parameter "${PATH}.lora_B.weight" value 0 is not finite as F32 (scaling 1e+39 · up overflows float32 or up holds a non-finite value), expected finite values; nothing was written`,
  ],
  [
    "adapterToOnnx past F16",
    () => adapterToOnnx(adapter({ ...MOD, down: { ...MOD.down, data: Float32Array.of(1e5, 1) } }), { dtype: "F16" }),
    "non_finite",
    `adapterToOnnx: module "${PATH}" parameter "${PATH}.lora_A.weight" value 0 is not finite as F16 (100000 is past F16's range), expected finite values; nothing was written`,
  ],
  [
    "onnxAdapterModules(null)",
    () => onnxAdapterModules(null as never),
    "invalid_argument",
    "onnxAdapterModules: bytes is null, expected a Uint8Array (an .onnx_adapter file's bytes)",
  ],
  [
    "parseOnnxAdapter('TORT')",
    () => parseOnnxAdapter("TORT" as never),
    "invalid_argument",
    'parseOnnxAdapter: bytes is "TORT", expected a Uint8Array (an .onnx_adapter file\'s bytes)',
  ],
  [
    "onnxParameterToFloat32(null)",
    () => onnxParameterToFloat32(null as never),
    "invalid_argument",
    "onnxParameterToFloat32: p is null, expected { name: string, dims: number[], dataType: number, data }",
  ],
  [
    "onnxParameterToFloat32 data array",
    () => onnxParameterToFloat32({ name: "p", dims: [1], dataType: 1, data: [0, 0, 0, 0] as never }),
    "invalid_argument",
    'onnxParameterToFloat32: parameter "p" data is an array of 4 items, expected a Uint8Array (little-endian element bytes)',
  ],
  [
    "serializeOnnxAdapter(null)",
    () => serializeOnnxAdapter(null as never),
    "invalid_argument",
    "serializeOnnxAdapter: parameters is null, expected an array of { name, dims, dataType, data }",
  ],
  [
    "serializeOnnxAdapter([null])",
    () => serializeOnnxAdapter([null as never]),
    "invalid_argument",
    "serializeOnnxAdapter: parameters[0] is null, expected { name: string, dims: number[], dataType: number, data }",
  ],
  [
    "serializeOnnxAdapter versions",
    () => serializeOnnxAdapter([], { modelVersion: "1" as never }),
    "invalid_argument",
    'serializeOnnxAdapter: versions.modelVersion is "1", expected an int32',
  ],
];

describe("format entry points with wrong arguments", () => {
  it.each(CASES)("%s", (_, f, code, message) => {
    expect(codeAndMessage(f)).toEqual([code, message]);
  });

  it("null options and heads mean the defaults", () => {
    const bytes = adapterToGguf(adapter(MOD), {
      ...ARCH,
      dtype: null as never,
      name: null as never,
      heads: null as never,
    });
    expect(ggufToAdapter(bytes, null as never).modules[0]!.modulePath).toBe(PATH);
    expect(modulesToPeft([MOD], null as never).configJson).toContain('"peft_type": "LORA"');
    expect(onnxAdapterModules(adapterToOnnx(adapter(MOD), null as never))[0]!.modulePath).toBe(PATH);
    expect(serializeOnnxAdapter([], null as never).length).toBeGreaterThan(8);
  });
});

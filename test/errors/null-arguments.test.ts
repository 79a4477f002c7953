// Public entry points called from JavaScript with null or undefined where an object, a path or options belong:
// each answers with a LoraError naming the argument (they threw raw TypeErrors from inside, or Node's own
// "path argument must be of type string"), and null options mean the defaults, as undefined does.

import { describe, expect, it } from "vitest";
import {
  dequantizeMatrix,
  encodeTensorData,
  loadPeftAdapter,
  looksLikeTorchFile,
  lowRankForward,
  matmul,
  mergeAdapter,
  parseSafetensorsHeader,
  readSafetensorsHeaderLength,
  safeMerge,
  savePeftAdapter,
  serializeSafetensors,
  serializeSafetensorsHeader,
  serializeSafetensorsIndex,
} from "../../src/index.js";
import { generateAll } from "../../src/model/generate.js";
import { ggufModelConfig, loadGgufModel } from "../../src/model/gguf-base.js";
import { readSampling } from "../../src/model/sampling.js";
import { openBaseModel } from "../../src/node/base-model.js";
import { readJsonInput } from "../../src/node/input.js";
import { attachAdapterDir, loadModelDir } from "../../src/node/model-files.js";
import { openSafetensors } from "../../src/node/safetensors-file.js";
import { openModelEngine } from "../../src/node/serve/model.js";
import { caught, loraError } from "../helpers/errors.js";

const path = (op: string, name: string, shown: string) =>
  `${op}: ${name} is ${shown}, expected a path (a non-empty string without NUL characters)`;

describe("null and undefined arguments", () => {
  it.each([
    ["loadModelDir", () => loadModelDir(null as never), path("loadModelDir", "dir", "null")],
    ["openSafetensors", () => openSafetensors(undefined as never), path("openSafetensors", "path", "undefined")],
    ["openBaseModel", () => openBaseModel("a\0b"), path("openBaseModel", "path", '"a\\u0000b"')],
    ["openModelEngine", () => openModelEngine("" as never), path("openModelEngine", "dir", '""')],
    [
      "attachAdapterDir (dir)",
      () => attachAdapterDir({} as never, "a", 5 as never),
      path("attachAdapterDir", "dir", "a number"),
    ],
    [
      "attachAdapterDir (model)",
      () => attachAdapterDir({} as never, "a", "somewhere"),
      "attachAdapterDir: model is not a CausalLM (loadModelDir gives one)",
    ],
  ])("%s: invalid_argument naming the path", async (_, f, message) => {
    const e = await loraError(f, "invalid_argument");
    expect(e.message).toBe(message);
  });

  it("readJsonInput", () => {
    expect(caught(() => readJsonInput(null as never)).message).toBe(path("readJsonInput", "source", "null"));
  });

  it("ops: a null adapter or files object is named; null options are the defaults", () => {
    const W = { data: Float64Array.of(1, 0, 0, 1), rows: 2, cols: 2 };
    const adapter = {
      down: { data: Float64Array.of(1, 1), rows: 2, cols: 1 },
      up: { data: Float64Array.of(0.5, 0.5), rows: 1, cols: 2 },
      scaling: 2,
    };
    const x = { data: Float64Array.of(1, 2), rows: 1, cols: 2 };
    expect(Array.from(lowRankForward(x, W, adapter, null as never).data)).toEqual([4, 5]);
    expect(caught(() => lowRankForward(x, W, null as never))).toMatchObject({
      code: "invalid_argument",
      message: "lowRankForward: adapter must be an object {down, up, scaling}",
    });
    expect(Array.from(matmul(x, W, null as never).data)).toEqual([1, 2]);
    expect(Array.from(safeMerge({ ...W, data: W.data.slice() }, adapter, null as never).data)).toEqual([2, 1, 1, 2]);
    expect(Array.from(mergeAdapter({ ...W, data: W.data.slice() }, adapter, null as never).data)).toEqual([2, 1, 1, 2]);
    expect(caught(() => loadPeftAdapter(null as never))).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(/^loadPeftAdapter: files is null, expected \{ config, weights \}/),
    });
    expect(caught(() => savePeftAdapter(null as never, {}))).toMatchObject({
      code: "invalid_argument",
      message: "savePeftAdapter: modules must be an array of adapter modules",
    });
    expect(caught(() => savePeftAdapter([], null as never))).toMatchObject({ code: "invalid_argument" });
    expect(caught(() => dequantizeMatrix(null as never))).toMatchObject({
      code: "unsupported_dtype",
      message: 'dequantizeMatrix: q.type is undefined, expected "q8_0" or "q4_0"',
    });
  });

  it("model: generate without a model, GGUF loaders without a file, sampling with null options", async () => {
    expect(caught(() => generateAll(null as never, []))).toMatchObject({
      code: "invalid_argument",
      message: "generate: model is null, expected a CausalLM (loadModelDir, loadGgufModel or new CausalLM)",
    });
    expect(caught(() => ggufModelConfig(null as never))).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(/^loadGgufModel: file is null, expected a parsed GGUF/),
    });
    await expect(loadGgufModel({} as never, null as never)).rejects.toMatchObject({ code: "invalid_argument" });
    expect(readSampling("op", null as never)).toEqual({ temperature: 0, topK: 0, topP: 1 });
  });

  it("safetensors and torch helpers: null tensors, bytes or tensor specs", () => {
    expect(caught(() => serializeSafetensors(null as never))).toMatchObject({
      code: "invalid_argument",
      message:
        "serializeSafetensors: tensors is null, expected a Map, an iterable of [name, tensor] pairs or an object of tensors by name",
    });
    expect(caught(() => serializeSafetensorsHeader({ w: null } as never))).toMatchObject({
      code: "invalid_argument",
      message: 'serializeSafetensorsHeader: tensor "w" is null, expected { dtype, shape, data }',
    });
    expect(caught(() => encodeTensorData(undefined as never))).toMatchObject({
      code: "invalid_argument",
      message: "encodeTensorData: tensor is undefined, expected { dtype, shape, data }",
    });
    expect(caught(() => parseSafetensorsHeader(null as never, 10))).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(
        /^parseSafetensors: expected the file's first bytes as a Uint8Array .* got null and 10$/,
      ),
    });
    expect(caught(() => readSafetensorsHeaderLength(new Uint8Array(8), Number.NaN))).toMatchObject({
      code: "invalid_argument",
    });
    expect(caught(() => serializeSafetensorsIndex(null as never, 0))).toMatchObject({
      code: "invalid_argument",
      message: "serializeSafetensorsIndex: weightMap must be a Map of tensor name → shard file name",
    });
    expect(caught(() => serializeSafetensorsIndex(new Map(), -1))).toMatchObject({
      code: "invalid_argument",
      message: "serializeSafetensorsIndex: totalSize is -1, expected an integer ≥ 0",
    });
    expect(looksLikeTorchFile(null as never)).toBe(false);
  });
});

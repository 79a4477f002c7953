// Every adapter format entry point (GGUF, ONNX, MLX) with every value of VALUES in each argument position checked:
// a LoraError or a result, never a raw TypeError / RangeError from inside (format-arguments.test.ts has the messages).

import { describe, expect, it } from "vitest";
import { LoraError } from "../../src/errors.js";
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
  serializeOnnxAdapter,
  serializeSafetensors,
} from "../../src/index.js";
import { ARCH, adapter, MLX_CONFIG, MOD, ADAPTER_PATH as PATH } from "./format-fixtures.js";

describe("format entry points: a sweep of wrong values", () => {
  const VALUES: unknown[] = [null, undefined, {}, [], 5, Number.NaN, "x", true, Symbol("s"), 10n, () => 1];
  const ENTRY_POINTS: [string, (v: unknown) => unknown][] = [
    ["adapterToGguf(v)", (v) => adapterToGguf(v as never, ARCH)],
    ["adapterToGguf(a, v)", (v) => adapterToGguf(adapter(MOD), v as never)],
    ["adapterToGguf(a, {architecture: v})", (v) => adapterToGguf(adapter(MOD), { architecture: v as never })],
    [
      "adapterToGguf(a, {heads: v})",
      (v) =>
        adapterToGguf(adapter({ ...MOD, modulePath: "model.layers.0.self_attn.q_proj" }), {
          architecture: "llama",
          heads: v as never,
        }),
    ],
    ...["modulePath", "kind", "down", "up", "r", "scaling", "magnitude", "bias", "baseWeight"].flatMap(
      (k): [string, (v: unknown) => unknown][] => [
        [`adapterToGguf module.${k}`, (v) => adapterToGguf(adapter({ ...MOD, [k]: v }), ARCH)],
        [`adapterToOnnx module.${k}`, (v) => adapterToOnnx(adapter({ ...MOD, [k]: v }))],
        [`modulesToPeft module.${k}`, (v) => modulesToPeft([{ ...MOD, [k]: v }] as never)],
      ],
    ),
    ["ggufToAdapter(v)", (v) => ggufToAdapter(v as never)],
    ["ggufToAdapter(bytes, v)", (v) => ggufToAdapter(adapterToGguf(adapter(MOD), ARCH), v as never)],
    ["modulesToPeft(v)", (v) => modulesToPeft(v as never)],
    ["parseGguf(v)", (v) => parseGguf(v as never)],
    ["parseGgufHeader(v, 8)", (v) => parseGgufHeader(v as never, 8)],
    ["serializeGguf(v, [])", (v) => serializeGguf(v as never, [])],
    ["serializeGguf({}, v)", (v) => serializeGguf({}, v as never)],
    ["serializeGguf({k: v}, [])", (v) => serializeGguf({ k: v as never }, [])],
    [
      "serializeGguf tensor shape",
      (v) => serializeGguf({}, [{ name: "t", shape: [v as never], type: "F32", data: new Uint8Array(4) }]),
    ],
    ["ggufElements(v)", (v) => ggufElements(v as never)],
    ["ggufNameOf(v, p)", (v) => ggufNameOf(v as never, PATH)],
    ["hfModuleOf('llama', v)", (v) => hfModuleOf("llama", v as never)],
    ["loadMlxAdapter(v)", (v) => loadMlxAdapter(v as never)],
    [
      "loadMlxAdapter(files, {scaling: v})",
      (v) => loadMlxAdapter({ config: MLX_CONFIG, weights: serializeSafetensors({}) }, { scaling: v as never }),
    ],
    ["mlxScalingRule(v)", (v) => mlxScalingRule(v as never)],
    ["adapterToOnnx(v)", (v) => adapterToOnnx(v as never)],
    ["adapterToOnnx(a, v)", (v) => adapterToOnnx(adapter(MOD), v as never)],
    ["onnxAdapterModules(v)", (v) => onnxAdapterModules(v as never)],
    ["parseOnnxAdapter(v)", (v) => parseOnnxAdapter(v as never)],
    ["onnxParameterToFloat32(v)", (v) => onnxParameterToFloat32(v as never)],
    [
      "onnxParameterToFloat32 dataType",
      (v) => onnxParameterToFloat32({ name: "p", dims: [1], dataType: v as never, data: new Uint8Array(4) }),
    ],
    ["serializeOnnxAdapter(v)", (v) => serializeOnnxAdapter(v as never)],
    ["serializeOnnxAdapter([v])", (v) => serializeOnnxAdapter([v as never])],
  ];
  it.each(ENTRY_POINTS)("%s: a LoraError or a result for every value", (_, f) => {
    const raw: string[] = [];
    for (const v of VALUES)
      try {
        f(v);
      } catch (e) {
        if (!(e instanceof LoraError)) raw.push(`${String(typeof v === "symbol" ? "Symbol" : v)}: ${String(e)}`);
      }
    expect(raw).toEqual([]);
  });
});

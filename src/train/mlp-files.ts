// An Mlp and its files. LoRA adapters of an Mlp's LoraLinear layers ⇄ PEFT per-module adapters (float32, module
// paths "0", "2", … as in PyTorch's nn.Sequential), and the base model ⇄ a PyTorch-style state dict in
// safetensors: "<path>.weight" [dOut, dIn] (= Wᵀ, nn.Linear's layout) and "<path>.bias" [dOut], float64.

import { AdapterFormatError, ArgumentError, ShapeError } from "../errors.js";
import type { PeftModuleAdapter } from "../io/peft-adapter.js";
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from "../io/safetensors.js";
import { LoraLinear } from "../lora/layer.js";
import type { FloatArray, Matrix } from "../matrix.js";
import { fmtShape } from "../shape.js";
import type { ActivationName } from "./activation.js";
import { badArgument, requireObject } from "./check.js";
import { Linear } from "./linear.js";
import { Mlp } from "./mlp.js";

function requireMlp(op: string, name: string, v: unknown): void {
  if (!(v instanceof Mlp)) throw badArgument(op, name, v, "an Mlp");
}

function toFloat32(m: Matrix): Matrix<Float32Array> {
  return { data: Float32Array.from(m.data), rows: m.rows, cols: m.cols };
}

/**
 * The adapter `name` of every LoraLinear in mlp as PEFT per-module adapters (float32 copies; module paths from
 * Mlp.modulePath). Dense layers without that adapter are skipped.
 * @example savePeftAdapter(loraModules(mlp, "default"), { peft_type: "LORA", r: 4, lora_alpha: 8 })
 */
export function loraModules(mlp: Mlp, name: string): PeftModuleAdapter[] {
  requireMlp("loraModules", "mlp", mlp);
  if (typeof name !== "string") throw badArgument("loraModules", "name", name, "an adapter name (a string)");
  const out: PeftModuleAdapter[] = [];
  mlp.linears.forEach((layer, i) => {
    if (!(layer instanceof LoraLinear) || !layer.adapterNames.includes(name)) return;
    const a = layer.adapter(name);
    out.push({
      modulePath: Mlp.modulePath(i),
      kind: "linear",
      down: toFloat32(a.down),
      up: toFloat32(a.up),
      r: a.r,
      alpha: a.alpha,
      scaling: a.scaling,
      fanInFanOut: false,
      dtype: "F32",
    });
  });
  return out;
}

/**
 * A new Mlp over base's dense layers (shared, not copied) where every module named in `modules` becomes a
 * LoraLinear carrying that adapter (as float64 copies in the base dtype, with the module's scaling) under `name`.
 * @throws {ArgumentError} a module path that is not a dense layer of base ("invalid_argument")
 */
export function applyLoraModules(base: Mlp, modules: readonly PeftModuleAdapter[], name = "default"): Mlp {
  requireMlp("applyLoraModules", "base", base);
  if (!Array.isArray(modules as unknown))
    throw badArgument("applyLoraModules", "modules", modules, "an array of PEFT module adapters (loadPeftAdapter)");
  modules.forEach((m, i) => {
    requireObject("applyLoraModules", `modules[${i}]`, m, "a PEFT module adapter { modulePath, down, up, … }");
  });
  const byPath = new Map(modules.map((m) => [m.modulePath, m]));
  const paths = base.linears.map((_, i) => Mlp.modulePath(i));
  for (const p of byPath.keys())
    if (!paths.includes(p))
      throw new ArgumentError(
        "invalid_argument",
        `applyLoraModules: adapter module "${p}" is not a dense layer of the model (module paths: ${paths.join(", ")})`,
        { module: p, paths },
      );
  return base.mapLinears((layer, i) => {
    const m = byPath.get(Mlp.modulePath(i));
    if (m === undefined) return layer;
    if (!(layer instanceof Linear))
      throw new ArgumentError(
        "invalid_argument",
        `applyLoraModules: dense layer ${Mlp.modulePath(i)} is not a plain Linear; apply adapters to a base Mlp`,
        { module: Mlp.modulePath(i) },
      );
    const Ctor = layer.weight.data.constructor as new (src: ArrayLike<number>) => FloatArray;
    const lora = new LoraLinear({ weight: layer.weight, bias: layer.bias });
    lora.addAdapter(name, {
      down: { data: new Ctor(m.down.data), rows: m.down.rows, cols: m.down.cols },
      up: { data: new Ctor(m.up.data), rows: m.up.rows, cols: m.up.cols },
      alpha: m.alpha,
      scale: m.scaling,
    });
    return lora;
  });
}

/** The base model's dense layers as safetensors bytes (PyTorch nn.Sequential state-dict keys and layouts, F64). */
export function mlpToSafetensors(mlp: Mlp): Uint8Array {
  requireMlp("mlpToSafetensors", "mlp", mlp);
  const tensors = new Map<string, TensorToWrite>();
  mlp.linears.forEach((layer, i) => {
    if (!(layer instanceof Linear))
      throw new ArgumentError(
        "invalid_argument",
        `mlpToSafetensors: dense layer ${Mlp.modulePath(i)} is not a plain Linear; save the base Mlp`,
        { module: Mlp.modulePath(i) },
      );
    const { rows: dIn, cols: dOut, data } = layer.weight;
    const wt = new Float64Array(dIn * dOut);
    // W: [dIn, dOut] → weight: [dOut, dIn]
    for (let i2 = 0; i2 < dIn; i2++) for (let j = 0; j < dOut; j++) wt[j * dIn + i2] = data[i2 * dOut + j]!;
    const path = Mlp.modulePath(i);
    tensors.set(`${path}.weight`, { dtype: "F64", shape: [dOut, dIn], data: wt });
    if (layer.bias !== undefined)
      tensors.set(`${path}.bias`, { dtype: "F64", shape: [dOut], data: Float64Array.from(layer.bias) });
  });
  return serializeSafetensors(tensors, { format: "pt" });
}

/**
 * Rebuilds an Mlp of float64 Linear layers from mlpToSafetensors' bytes (any float dtype is read exactly). Dense
 * layer i is "<2i>.weight" [dOut, dIn] and an optional "<2i>.bias" [dOut]; each layer's dIn is the previous dOut.
 * @throws {SafetensorsError} malformed bytes, or no "0.weight" tensor ("tensor_not_found")
 * @throws {ShapeError} a weight that is not [dOut, dIn] with dims ≥ 1, a layer whose dIn is not the previous dOut, a
 *   bias that is not [dOut] ("shape_mismatch")
 * @throws {AdapterFormatError} a tensor that is no layer's weight or bias ("4.weight" after a missing "2.weight":
 *   "unexpected_tensor")
 */
export function mlpFromSafetensors(bytes: Uint8Array, activation: ActivationName = "relu"): Mlp {
  const op = "mlpFromSafetensors";
  if (activation !== "relu" && activation !== "gelu")
    throw badArgument(op, "activation", activation, '"relu" or "gelu"');
  const file = parseSafetensors(bytes);
  const linears: Linear[] = [];
  const used = new Set<string>();
  let prev: { name: string; shape: readonly number[] } | null = null;
  for (let i = 0; file.has(`${Mlp.modulePath(i)}.weight`); i++) {
    const path = Mlp.modulePath(i);
    const name = `${path}.weight`;
    const shape = file.info(name).shape;
    if (shape.length !== 2 || shape.some((d) => d < 1))
      throw badShape(op, name, shape, "[dOut, dIn] with dims ≥ 1 (nn.Linear's layout)");
    const [dOut, dIn] = shape as [number, number];
    if (prev !== null && dIn !== prev.shape[0])
      throw badShape(op, name, shape, `[dOut, ${prev.shape[0]}] because "${prev.name}" is ${fmtShape(prev.shape)}`);
    const wt = requireFinite(op, name, file.toFloat64(name));
    const w = new Float64Array(dIn * dOut);
    for (let r = 0; r < dOut; r++) for (let c = 0; c < dIn; c++) w[c * dOut + r] = wt[r * dIn + c]!;
    let bias: Float64Array | undefined;
    if (file.has(`${path}.bias`)) {
      const bShape = file.info(`${path}.bias`).shape;
      if (bShape.length !== 1 || bShape[0] !== dOut)
        throw badShape(op, `${path}.bias`, bShape, `[${dOut}] because "${name}" is ${fmtShape(shape)}`);
      bias = requireFinite(op, `${path}.bias`, file.toFloat64(`${path}.bias`));
      used.add(`${path}.bias`);
    }
    used.add(name);
    linears.push(new Linear({ weight: { data: w, rows: dIn, cols: dOut }, bias }));
    prev = { name, shape };
  }
  if (linears.length === 0) file.info("0.weight");
  const extra = file.names().filter((n) => !used.has(n));
  if (extra.length > 0)
    throw new AdapterFormatError(
      "unexpected_tensor",
      `${op}: tensor "${extra[0]}" is not the weight or bias of a dense layer read (layers ${linears.map((_, k) => `"${Mlp.modulePath(k)}"`).join(", ")}; the next would be "${Mlp.modulePath(linears.length)}.weight", which is missing)`,
      { names: extra },
    );
  return new Mlp(linears, activation);
}

// A state dict's values must be finite: a NaN or ±Infinity weight would make every output NaN at the first forward.
function requireFinite(op: string, name: string, data: Float64Array): Float64Array {
  for (let i = 0; i < data.length; i++)
    if (!Number.isFinite(data[i]))
      throw new ArgumentError(
        "non_finite",
        `${op}: tensor "${name}" holds ${data[i]} at index ${i}, expected finite values`,
        { name, index: i },
      );
  return data;
}

function badShape(op: string, name: string, shape: readonly number[], expected: string): ShapeError {
  return new ShapeError(
    "shape_mismatch",
    `${op}: tensor "${name}" has shape ${fmtShape(shape)}, expected ${expected}`,
    {
      name,
      shape: [...shape],
    },
  );
}

// The model's adapters by name: attach (PEFT or MLX, as the io/ loaders produce them), detach, rescale, merge one
// into the weights and unmerge it. Linear modules go into each projection's LoraLinear (down [dIn, r], up [r, dOut],
// scale = multiplier × the file's scaling); what is not a linear LoRA is kept here and applied per row by the
// model: an embedding LoRA (down [vocab, r], up [r, hidden]), a replaced lm_head or embedding table
// (modules_to_save) and replaced biases (bias "lora_only"/"all"). Attaching checks everything (names, shapes, data
// lengths, finite values and scalings) before changing anything, and copies every tensor, so the caller's objects
// can change afterwards; a merge checks every layer before it changes any.

import { AdapterStateError, ArgumentError, ModelError } from "../errors.js";
import type { GgufLoraAdapter } from "../io/gguf-lora.js";
import type { MlxAdapter } from "../io/mlx-adapter.js";
import type { PeftAdapter, PeftModuleAdapter, SavedTensor } from "../io/peft-adapter.js";
import { ATTACH, checkModule, checkSaved, checkScaling, expectDims, readScale } from "./adapter-checks.js";
import type { ModelConfig } from "./config.js";
import type { ModelLinear } from "./linear.js";
import { showValue } from "./show.js";
import type { ModelWeights } from "./weights.js";

/** An adapter as the loaders give it: PEFT, MLX-LM, or a llama.cpp GGUF LoRA (ggufToAdapter). */
export type RuntimeAdapter = PeftAdapter | MlxAdapter | GgufLoraAdapter;

/** Options of attachAdapter. */
export interface AttachOptions {
  /** Multiplies the file's scaling (default 1). */
  scale?: number;
}

/** What the model holds for an attached adapter. */
export interface AdapterInfo {
  name: string;
  format: "peft" | "mlx" | "gguf";
  scale: number;
  /** Module paths of the linear projections it adapts. */
  modules: string[];
  isDora: boolean;
  hasEmbedding: boolean;
  replacesLmHead: boolean;
  /** Bytes of its tensors held by the model (float32). */
  bytes: number;
}

interface Attached {
  info: AdapterInfo;
  linears: { linear: ModelLinear; mod: PeftModuleAdapter }[];
  embedding: { down: Float32Array; up: Float32Array; r: number; fileScaling: number; scaling: number } | null;
  lmHead: Float32Array | null;
  embedTable: Float32Array | null;
  biases: { linear: ModelLinear; bias: Float32Array }[];
}

export class AdapterSet {
  private readonly map = new Map<string, Attached>();
  merged: string | null = null;

  constructor(
    private readonly cfg: ModelConfig,
    private readonly w: ModelWeights,
  ) {}

  names(): string[] {
    return [...this.map.keys()];
  }

  // The attached names for messages: "a", "b" (or none)
  private knownList(): string {
    return (
      this.names()
        .map((n) => `"${n}"`)
        .join(", ") || "none"
    );
  }

  info(name: string): AdapterInfo {
    return { ...this.get("CausalLM.adapterInfo", name).info };
  }

  attach(name: string, adapter: RuntimeAdapter, options: AttachOptions): AdapterInfo {
    if (typeof name !== "string" || name === "")
      throw new ArgumentError(
        "invalid_argument",
        `${ATTACH}: name must be a non-empty string, got ${showValue(name)}`,
        {
          name: "name",
        },
      );
    if (this.map.has(name))
      throw new AdapterStateError(
        "duplicate_adapter",
        `${ATTACH}: an adapter named "${name}" is already attached (detach it first)`,
        {
          name,
        },
      );
    if (options !== undefined && (options === null || typeof options !== "object"))
      throw new ArgumentError("invalid_argument", `${ATTACH}: options is ${showValue(options)}, expected { scale }`, {
        name: "options",
      });
    const scale = readScale(ATTACH, options?.scale);
    if (adapter === null || typeof adapter !== "object" || !Array.isArray((adapter as { modules?: unknown }).modules))
      throw new ArgumentError(
        "invalid_argument",
        `${ATTACH}: adapter is ${showValue(adapter)}, expected a loaded adapter with modules (loadAdapter, loadPeftAdapter, loadMlxAdapter or ggufToAdapter)`,
        { name: "adapter" },
      );
    const a = this.plan(name, adapter, scale);
    const done: ModelLinear[] = [];
    try {
      for (const { linear, mod } of a.linears) {
        linear.layer.addAdapter(name, givenOptions(mod, scale));
        linear.layer.setActive([]);
        if (mod.magnitude) linear.dora.add(name);
        done.push(linear);
      }
    } catch (e) {
      for (const l of done) {
        l.layer.removeAdapter(name);
        l.dora.delete(name);
      }
      throw e;
    }
    for (const { linear, bias } of a.biases) linear.biasOverrides.set(name, bias);
    this.map.set(name, a);
    return { ...a.info };
  }

  detach(name: string): void {
    const a = this.get("CausalLM.detachAdapter", name);
    if (this.merged === name)
      throw new AdapterStateError(
        "adapter_state",
        `CausalLM.detachAdapter: adapter "${name}" is merged; call unmergeAdapter() first`,
        {
          name,
        },
      );
    for (const { linear } of a.linears) {
      linear.layer.removeAdapter(name);
      linear.dora.delete(name);
    }
    for (const { linear } of a.biases) linear.biasOverrides.delete(name);
    this.map.delete(name);
  }

  setScale(name: string, scale: number): void {
    const op = "CausalLM.setAdapterScale";
    const a = this.get(op, name);
    if (scale === undefined)
      throw new ArgumentError("invalid_argument", `${op}: scale is undefined, expected a finite number`, {
        name: "scale",
      });
    const s = readScale(op, scale);
    if (this.merged === name)
      throw new AdapterStateError("adapter_state", `${op}: adapter "${name}" is merged; call unmergeAdapter() first`, {
        name,
      });
    // every product is checked before any changes, so a refused scale leaves the old one everywhere
    for (const { mod } of a.linears) checkScaling(op, name, mod.modulePath, mod.scaling, s);
    if (a.embedding) checkScaling(op, name, "the embedding", a.embedding.fileScaling, s);
    for (const { linear, mod } of a.linears) linear.layer.setScaling(name, mod.scaling * s);
    if (a.embedding) a.embedding.scaling = a.embedding.fileScaling * s;
    a.info.scale = s;
  }

  merge(name: string): void {
    const op = "CausalLM.mergeAdapter";
    const a = this.get(op, name);
    if (this.merged !== null)
      throw new AdapterStateError(
        "adapter_state",
        `${op}: adapter "${this.merged}" is already merged; unmerge it first`,
        {
          merged: this.merged,
        },
      );
    // W + ΔW is computed and checked for every layer first (one layer's copy at a time), so a merge that would
    // overflow anywhere changes nothing; then the same sums are made in place
    for (const { linear } of a.linears) {
      try {
        linear.layer.merge([name], { dryRun: true });
      } catch (e) {
        if (e instanceof ArgumentError && e.code === "non_finite")
          throw new ArgumentError(
            "non_finite",
            `${op}: merging adapter "${name}" into ${linear.path} would make its weight non-finite (${e.message}); nothing was merged`,
            { name, module: linear.path },
          );
        throw e;
      }
    }
    for (const { linear } of a.linears) linear.layer.merge([name]);
    this.merged = name;
  }

  unmerge(): void {
    if (this.merged === null) return;
    for (const { linear } of this.get("CausalLM.unmergeAdapter", this.merged).linears) linear.layer.unmerge();
    this.merged = null;
  }

  /** Refuses an adapter name that is not attached. */
  checkUse(op: string, what: string, adapter: string | null): void {
    if (adapter !== null && !this.map.has(adapter)) {
      throw new AdapterStateError(
        "unknown_adapter",
        `${op}: ${what} is ${showValue(adapter)}, which is not attached (adapters: ${this.knownList()})`,
        {
          name: adapter,
        },
      );
    }
  }

  /** While an adapter is merged every row must use it; DoRA adapters cannot share a batch. */
  checkBatch(op: string, ids: readonly (string | null)[], uniform: string | null | undefined): void {
    if (this.merged !== null && uniform !== this.merged)
      throw new AdapterStateError(
        "adapter_state",
        `${op}: adapter "${this.merged}" is merged into the weights, so every sequence must use it (got ${[...new Set(ids)].map((i) => JSON.stringify(i)).join(", ")}); call unmergeAdapter() to mix adapters`,
        { merged: this.merged },
      );
    if (uniform === undefined)
      for (const id of new Set(ids))
        if (id !== null && this.map.get(id)!.info.isDora)
          throw new AdapterStateError(
            "adapter_state",
            `${op}: adapter "${id}" is a DoRA adapter, which cannot share a batch with other adapters; run its sequences in a batch of their own`,
            { name: id },
          );
  }

  embedTable(id: string | null): Float32Array | null {
    return id === null ? null : (this.map.get(id)?.embedTable ?? null);
  }

  lmHead(id: string | null): Float32Array | null {
    return id === null ? null : (this.map.get(id)?.lmHead ?? null);
  }

  /** x[o … o + hidden) += scaling·down[token]·up for an adapter with an embedding LoRA. */
  addEmbeddingDelta(id: string | null, token: number, x: Float32Array, o: number): void {
    const e = id === null ? null : (this.map.get(id)?.embedding ?? null);
    if (!e) return;
    const H = this.cfg.hiddenSize;
    for (let j = 0; j < H; j++) {
      let s = 0;
      for (let q = 0; q < e.r; q++) s += e.down[token * e.r + q]! * e.up[q * H + j]!;
      x[o + j] = x[o + j]! + Math.fround(s) * e.scaling;
    }
  }

  private get(op: string, name: string): Attached {
    const a = this.map.get(name);
    if (!a) {
      throw new AdapterStateError(
        "unknown_adapter",
        `${op}: no adapter named ${showValue(name)} (adapters: ${this.knownList()})`,
        {
          name,
        },
      );
    }
    return a;
  }

  // Maps every module and saved tensor of the adapter onto the model, checking names, shapes, data and scalings;
  // changes nothing. What the model keeps beyond the LoraLinears (which copy their factors) is copied here.
  private plan(name: string, adapter: RuntimeAdapter, scale: number): Attached {
    const { vocabSize: V, hiddenSize: H } = this.cfg;
    const linears: Attached["linears"] = [];
    let embedding: Attached["embedding"] = null;
    let bytes = 0;
    let embedTable: Float32Array | null = null;
    const biases: Attached["biases"] = [];
    const seen = new Set<string>();
    for (let i = 0; i < adapter.modules.length; i++) {
      const mod = checkModule(name, adapter.modules[i], i);
      const path = this.canonical(mod.modulePath);
      if (seen.has(path))
        throw new ModelError(
          "duplicate_name",
          `${ATTACH}: adapter "${name}" adapts module "${mod.modulePath}" twice (as ${showValue(path)}), expected each module once`,
          { name, module: mod.modulePath },
        );
      seen.add(path);
      // loaders that read PEFT's saved base layers attach them to the module: its own bias, its full base weight
      const own = mod as { bias?: Float32Array; baseWeight?: { shape: number[]; data: Float32Array } };
      bytes += 4 * (mod.down.data.length + mod.up.data.length + (mod.magnitude?.length ?? 0));
      bytes += 4 * ((own.bias?.length ?? 0) + (own.baseWeight?.data.length ?? 0));
      if (own.baseWeight && mod.kind !== "embedding")
        throw new ModelError(
          "unsupported_format",
          `${ATTACH}: adapter "${name}" replaces the base weight of linear module "${mod.modulePath}", which the runtime does not do per adapter (merge the adapter into the model instead)`,
          { name, module: mod.modulePath },
        );
      checkScaling(ATTACH, name, mod.modulePath, mod.scaling, scale);
      if (mod.kind === "embedding") {
        if (path !== this.w.embedPath) throw this.unknownModule(name, mod.modulePath, "embedding");
        expectDims(name, mod, V, H);
        if (own.baseWeight)
          embedTable = checkSaved(name, `${mod.modulePath}.base_layer.weight`, own.baseWeight, [V, H]);
        embedding = {
          down: mod.down.data.slice(),
          up: mod.up.data.slice(),
          r: mod.r,
          fileScaling: mod.scaling,
          scaling: mod.scaling * scale,
        };
        continue;
      }
      const linear = this.w.linears.get(path);
      if (!linear) throw this.unknownModule(name, mod.modulePath, "linear");
      expectDims(name, mod, linear.dIn, linear.dOut);
      linears.push({ linear, mod });
      if (own.bias)
        biases.push({
          linear,
          bias: checkSaved(name, `${mod.modulePath}.bias`, { shape: [own.bias.length], data: own.bias }, [linear.dOut]),
        });
    }
    const format = "format" in adapter ? adapter.format : "gguf";
    const saved: Map<string, SavedTensor> =
      "format" in adapter && adapter.format === "peft" && adapter.modulesToSave instanceof Map
        ? adapter.modulesToSave
        : new Map();
    let lmHead: Float32Array | null = null;
    for (const [key, t] of saved) {
      const plain = this.canonical(key.replace(/\.base_layer\./, "."));
      bytes += 4 * (t?.data?.length ?? 0);
      const check = (shape: number[]) => checkSaved(name, key, t, shape);
      if (plain === "lm_head.weight") lmHead = check([V, H]);
      else if (plain === `${this.w.embedPath}.weight`) embedTable = check([V, H]);
      else if (plain.endsWith(".bias") && this.w.linears.has(plain.slice(0, -5))) {
        const linear = this.w.linears.get(plain.slice(0, -5))!;
        biases.push({ linear, bias: check([linear.dOut]) });
      } else throw this.unknownModule(name, key, "saved tensor");
    }
    const isDora = linears.some((l) => l.mod.magnitude !== undefined);
    return {
      info: {
        name,
        format,
        scale,
        modules: linears.map((l) => l.linear.path),
        isDora,
        hasEmbedding: embedding !== null,
        replacesLmHead: lmHead !== null,
        bytes,
      },
      linears,
      embedding,
      lmHead,
      embedTable,
      biases,
    };
  }

  // PEFT/MLX module paths → the model's: gpt2 modules are keyed "transformer.h.…" whether or not the adapter says so.
  private canonical(path: string): string {
    const p = path.replace(/^base_model\.model\./, "");
    if (this.cfg.family === "gpt2" && !p.startsWith("transformer.") && !p.startsWith("lm_head"))
      return `transformer.${p}`;
    return p;
  }

  private unknownModule(name: string, path: string, kind: string): ModelError {
    const examples = [...this.w.linears.keys()].slice(0, 3).join(", ");
    return new ModelError(
      "unknown_module",
      `${ATTACH}: adapter "${name}" targets ${kind} "${path}", which is not a module of this ${this.cfg.modelType} model (modules look like ${examples}, …)`,
      { name, module: path },
    );
  }
}

function givenOptions(mod: PeftModuleAdapter, scale: number) {
  const opts: {
    down: PeftModuleAdapter["down"];
    up: PeftModuleAdapter["up"];
    scale: number;
    useDora?: boolean;
    magnitude?: Float32Array;
  } = {
    down: mod.down,
    up: mod.up,
    scale: mod.scaling * scale,
  };
  if (mod.magnitude) {
    opts.useDora = true;
    opts.magnitude = mod.magnitude;
  }
  return opts;
}

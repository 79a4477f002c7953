// CausalLM: a loaded llama/mistral/qwen2/gpt2 model, float32 on lorakit's kernels, with named adapters. One forward
// step takes a batch of sequences, each with its new token ids, its KV cache and its adapter (or none); all rows
// of the batch (Σ new tokens) share every projection, attention runs per sequence over its cache. The two
// families differ only in a small table of choices (norm, positions, fused qkv, MLP) inside forward().
// Activations: x [N, hidden] for the batch's N new tokens, row order = sequences in order, tokens in order.

import { ArgumentError, ModelError } from "../errors.js";
import { packPanels, panelIndex } from "../kernels/panel.js";
import { dequantizeBlocks, quantBlockBytes } from "../kernels/quant-scalar.js";
import { gemm, panelGemm, quantLoraGemm, WASM_MIN_MACS } from "../kernels/select.js";
import { type QuantMatrix, quantKernelType } from "../lora/quant.js";
import { type AdapterInfo, AdapterSet, type AttachOptions, type RuntimeAdapter } from "./adapters.js";
import { type AttentionShape, attendSequence } from "./attention.js";
import { type ModelConfig, parseModelConfig } from "./config.js";
import { ADVANCE, KvCache } from "./kv-cache.js";
import type { RowPlan } from "./linear.js";
import { applyRope, geluNew, layerNorm, rmsNorm, ropeTables, siluMul } from "./math.js";
import { showValue } from "./show.js";
import {
  checkQuantScales,
  loadWeights,
  type ModelWeights,
  type Norm,
  type PendingRead,
  type TensorSource,
} from "./weights.js";

/** One sequence's part of a forward step. */
export interface SequenceStep {
  /** New token ids (at least one), appended after what the cache holds. */
  ids: readonly number[];
  /** This sequence's cache (from createCache()); advanced by ids.length. */
  cache: KvCache;
  /** Adapter name, or null / undefined for the base model. */
  adapter?: string | null;
}

/** Options of forward. */
export interface ForwardOptions {
  /** "last" (default): logits of each sequence's last new token; "all": of every new token. */
  logits?: "last" | "all";
}

const OP = "CausalLM.forward";

// Weights read by CausalLM.load, handed to the constructor under a private key.
const prepared = new WeakMap<object, ModelWeights>();
// The model each cache was made by (createCache): a cache holds one model's keys and values.
const owners = new WeakMap<KvCache, CausalLM>();

/** A causal language model with attachable adapters (see docs/model.md). */
export class CausalLM {
  readonly config: ModelConfig;
  private readonly weights: ModelWeights;
  private readonly adapters: AdapterSet;

  /**
   * Builds the model from config.json (text or object) and its weights (parsed safetensors, one per shard).
   * Every weight is decoded to float32 once and kept in kernel memory, except quantized ones a file keeps
   * quantized (GGUF Q8_0/Q4_0 projections, TensorFile.quantized), held as blocks.
   * @throws {ModelError} "unsupported_model", "missing_tensor"   @throws {ShapeError} a tensor of the wrong shape
   */
  constructor(config: string | object | ModelConfig, source: TensorSource) {
    this.config = isModelConfig(config) ? config : parseModelConfig(config);
    const pending: PendingRead[] = [];
    this.weights = prepared.get(source as object) ?? loadWeights(this.config, source, pending);
    if (pending.length > 0)
      throw new ArgumentError(
        "invalid_argument",
        `CausalLM: tensor "${pending[0]!.name}" is in a file read on demand; use await CausalLM.load(config, files)`,
        { name: "source" },
      );
    this.adapters = new AdapterSet(this.config, this.weights);
  }

  /**
   * Like the constructor, for files read on demand too (lorakit/node's openSafetensors): every weight is checked
   * and allocated first, then read one tensor at a time straight into kernel memory, so loading holds the weights
   * plus one tensor rather than the whole file twice.
   * @example const model = await CausalLM.load(configText, [await openSafetensors("model.safetensors")])
   */
  static async load(config: string | object | ModelConfig, source: TensorSource): Promise<CausalLM> {
    const cfg = isModelConfig(config) ? config : parseModelConfig(config);
    const pending: PendingRead[] = [];
    const weights = loadWeights(cfg, source, pending);
    for (const p of pending)
      if (p.out instanceof Uint8Array) {
        p.out.set(await p.file.readQuantBytes!(p.name));
        checkQuantScales(p.name, p.out, p.quant!);
      } else if (p.pack) packPanels(p.out, await p.file.readFloat32!(p.name), p.pack.k, p.pack.n, p.pack.transposed);
      else p.out.set(await p.file.readFloat32!(p.name));
    const key = {};
    prepared.set(key, weights);
    try {
      return new CausalLM(cfg, key as TensorSource);
    } finally {
      prepared.delete(key);
    }
  }

  /** Number of weights held (float32 and quantized alike). */
  get parameterCount(): number {
    return this.weights.floats;
  }

  /** A fresh, empty KV cache for one sequence, with room for initialCapacity positions (at most the model's context). */
  createCache(initialCapacity = 16): KvCache {
    const c = this.config;
    if (!Number.isSafeInteger(initialCapacity) || initialCapacity < 0)
      throw new ArgumentError(
        "invalid_argument",
        `CausalLM.createCache: initialCapacity is ${showValue(initialCapacity)}, expected an integer ≥ 0`,
        { name: "initialCapacity", value: initialCapacity },
      );
    const cache = new KvCache(c.numLayers, c.numKvHeads * c.headDim, Math.min(initialCapacity, c.maxPositions));
    owners.set(cache, this);
    return cache;
  }

  // ---- adapters (adapters.ts does the work) ----

  /** Attaches a loaded PEFT, MLX or GGUF (ggufToAdapter) adapter under `name`. Checks every module first; nothing changes on failure. */
  attachAdapter(name: string, adapter: RuntimeAdapter, options: AttachOptions = {}): AdapterInfo {
    return this.adapters.attach(name, adapter, options);
  }
  /** Removes an adapter (refused while merged). */
  detachAdapter(name: string): void {
    this.adapters.detach(name);
  }
  /** Sets an adapter's scale: its terms become scale × the file's scaling (PEFT's set_scale). */
  setAdapterScale(name: string, scale: number): void {
    this.adapters.setScale(name, scale);
  }
  /** Folds one adapter into the weights (every sequence must then use it) until unmergeAdapter(). */
  mergeAdapter(name: string): void {
    this.adapters.merge(name);
  }
  /** Takes the merged adapter back out of the weights. */
  unmergeAdapter(): void {
    this.adapters.unmerge();
  }
  get adapterNames(): string[] {
    return this.adapters.names();
  }
  get mergedAdapter(): string | null {
    return this.adapters.merged;
  }
  adapterInfo(name: string): AdapterInfo {
    return this.adapters.info(name);
  }

  /**
   * One step for a batch of sequences: runs their new tokens through the model, appends them to their caches and
   * returns logits per sequence: [1, vocab] ("last") or [ids.length, vocab] ("all"), row-major.
   * @throws {ArgumentError} bad ids or steps   @throws {ModelError} "context_length", "unknown_adapter"-like states
   */
  forward(steps: readonly SequenceStep[], options: ForwardOptions = {}): Float32Array[] {
    const which = options?.logits ?? "last";
    if (which !== "last" && which !== "all")
      throw new ArgumentError(
        "invalid_argument",
        `${OP}: options.logits is ${showValue(which)}, expected "last" or "all"`,
        { name: "options.logits", value: which },
      );
    const plan = this.validate(steps);
    const cfg = this.config;
    const w = this.weights;
    const H = cfg.hiddenSize;
    const N = plan.ids.length;
    const positions: number[] = [];
    const tokens: number[] = [];
    for (const s of steps)
      for (let i = 0; i < s.ids.length; i++) {
        positions.push(s.cache.length + i);
        tokens.push(s.ids[i]!);
      }
    const x = this.embed(tokens, positions, plan);
    const rope = cfg.family === "llama" ? ropeTables(positions, cfg.headDim, cfg.ropeTheta, cfg.ropeFactor) : null;
    const norm = (out: Float32Array, inp: Float32Array, nm: Norm) =>
      cfg.family === "llama" ? rmsNorm(out, inp, N, H, nm, cfg.normEps) : layerNorm(out, inp, N, H, nm, cfg.normEps);
    const shape: AttentionShape = {
      numHeads: cfg.numHeads,
      numKvHeads: cfg.numKvHeads,
      headDim: cfg.headDim,
      scale: cfg.attnScale,
    };
    const qWidth = cfg.numHeads * cfg.headDim;
    const kvWidth = cfg.numKvHeads * cfg.headDim;
    const a = new Float32Array(N * H);
    for (let l = 0; l < w.blocks.length; l++) {
      const b = w.blocks[l]!;
      norm(a, x, b.norm1);
      let q: Float32Array;
      let k: Float32Array;
      let v: Float32Array;
      let qStride = qWidth;
      let kvStride = kvWidth;
      let kOff = 0;
      let vOff = 0;
      if (b.qkv) {
        // gpt2: c_attn → [N, 3·hidden] = q | k | v side by side; read in place through strides and offsets
        q = b.qkv.forward(a, N, plan);
        k = q;
        v = q;
        qStride = kvStride = 3 * H;
        kOff = H;
        vOff = 2 * H;
      } else {
        q = b.q!.forward(a, N, plan);
        k = b.k!.forward(a, N, plan);
        v = b.v!.forward(a, N, plan);
        applyRope(q, N, cfg.numHeads, cfg.headDim, rope!);
        applyRope(k, N, cfg.numKvHeads, cfg.headDim, rope!);
      }
      const att = new Float32Array(N * qWidth);
      let row = 0;
      for (const s of steps) {
        attendSequence(
          shape,
          s.cache,
          l,
          q,
          qStride,
          k.subarray(kOff),
          v.subarray(vOff),
          kvStride,
          row,
          s.ids.length,
          att,
        );
        row += s.ids.length;
      }
      addInto(x, b.o.forward(att, N, plan));
      norm(a, x, b.norm2);
      let hidden: Float32Array;
      if (b.gate) hidden = siluMul(b.gate.forward(a, N, plan), b.up.forward(a, N, plan));
      else hidden = geluNew(b.up.forward(a, N, plan));
      addInto(x, b.down.forward(hidden, N, plan));
    }
    const out = this.logits(steps, x, plan, which, norm);
    // only now, with nothing left that can throw: a failed step leaves every cache as it was
    for (const s of steps) s.cache[ADVANCE](s.ids.length);
    return out;
  }

  private embed(tokens: number[], positions: number[], plan: RowPlan): Float32Array {
    const H = this.config.hiddenSize;
    const w = this.weights;
    const x = new Float32Array(tokens.length * H);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      const table = this.adapters.embedTable(plan.ids[i]!) ?? w.embed ?? w.lmHead; // tied: the head holds it
      if (!(table instanceof Float32Array)) quantRow(x, i * H, table, t);
      else if (table !== w.lmHead) x.set(table.subarray(t * H, (t + 1) * H), i * H);
      else for (let p = 0; p < H; p++) x[i * H + p] = table[panelIndex(H, p, t)]!; // column t of the packed head
      this.adapters.addEmbeddingDelta(plan.ids[i]!, tokens[i]!, x, i * H);
      if (w.positions) {
        const p = positions[i]! * H;
        for (let j = 0; j < H; j++) x[i * H + j] = x[i * H + j]! + w.positions[p + j]!;
      }
    }
    return x;
  }

  // Final norm and lm_head on the rows asked for, in one product per head weight (an adapter may replace lm_head),
  // padded with zero rows to the kernels' size threshold so a row's bits do not depend on the batch (linear.ts).
  private logits(
    steps: readonly SequenceStep[],
    x: Float32Array,
    plan: RowPlan,
    which: "last" | "all",
    norm: (out: Float32Array, inp: Float32Array, nm: Norm) => Float32Array,
  ): Float32Array[] {
    const { hiddenSize: H, vocabSize: V } = this.config;
    const xn = norm(new Float32Array(x.length), x, this.weights.finalNorm);
    const groups = new Map<Float32Array | QuantMatrix, { seq: number; first: number; n: number }[]>();
    let row = 0;
    steps.forEach((s, seq) => {
      const t = s.ids.length;
      const head = this.adapters.lmHead(plan.ids[row]!) ?? this.weights.lmHead;
      const part = { seq, first: which === "all" ? row : row + t - 1, n: which === "all" ? t : 1 };
      const list = groups.get(head);
      if (list) list.push(part);
      else groups.set(head, [part]);
      row += t;
    });
    const out: Float32Array[] = new Array(steps.length);
    const minRows = Math.ceil(WASM_MIN_MACS / (H * V));
    for (const [head, parts] of groups) {
      const n = parts.reduce((a, p) => a + p.n, 0);
      const m = Math.max(n, minRows);
      const xs = new Float32Array(m * H); // gathered rows [m, H]
      let at = 0;
      for (const p of parts) {
        xs.set(xn.subarray(p.first * H, (p.first + p.n) * H), at * H);
        at += p.n;
      }
      // [m, H]·[V, H]ᵀ → [m, V]: the model's head is packed (as [H, V]) or quantized (stored [V, H]), an adapter's
      // replacement plain [V, H]
      const y = new Float32Array(m * V);
      if (!(head instanceof Float32Array))
        quantLoraGemm(y, xs, head.bytes, quantKernelType(head.type), null, null, m, H, V, 0, 0, true);
      else if (head === this.weights.lmHead) panelGemm(y, xs, head, m, H, V);
      else gemm(y, xs, head, m, H, V, false, true, 1, 0);
      at = 0;
      for (const p of parts) {
        out[p.seq] = y.slice(at * V, (at + p.n) * V);
        at += p.n;
      }
    }
    return out;
  }

  private validate(steps: readonly SequenceStep[]): RowPlan {
    const cfg = this.config;
    if (!Array.isArray(steps) || steps.length === 0)
      throw new ArgumentError("invalid_argument", `${OP}: steps must be a non-empty array of {ids, cache, adapter}`, {
        name: "steps",
      });
    const ids: (string | null)[] = [];
    const seen = new Set<KvCache>();
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i]!;
      const t = Array.isArray(s?.ids) ? s.ids.length : 0;
      if (t === 0)
        throw new ArgumentError("invalid_argument", `${OP}: steps[${i}].ids must be a non-empty array of token ids`, {
          name: `steps[${i}].ids`,
        });
      for (const id of s.ids)
        if (!Number.isSafeInteger(id) || id < 0 || id >= cfg.vocabSize)
          throw new ArgumentError(
            "invalid_argument",
            `${OP}: steps[${i}].ids holds ${showValue(id)}, expected token ids in [0, ${cfg.vocabSize - 1}] (vocab_size ${cfg.vocabSize})`,
            { name: `steps[${i}].ids`, value: id },
          );
      const c = s.cache;
      if (!(c instanceof KvCache) || owners.get(c) !== this)
        throw new ArgumentError(
          "invalid_argument",
          `${OP}: steps[${i}].cache is ${c instanceof KvCache ? "a cache of another model (or made with new KvCache)" : showValue(c)}, expected a cache of this model (make one per sequence with model.createCache())`,
          { name: `steps[${i}].cache` },
        );
      if (seen.has(c))
        throw new ArgumentError(
          "invalid_argument",
          `${OP}: steps[${i}].cache is used twice in one step, expected one cache per sequence (make one per sequence with createCache())`,
          { name: `steps[${i}].cache` },
        );
      seen.add(c);
      if (c.length + t > cfg.maxPositions)
        throw new ModelError(
          "context_length",
          `${OP}: steps[${i}] would reach position ${c.length + t}, expected at most ${cfg.maxPositions} (max positions of this ${cfg.modelType} model; the cache holds ${c.length})`,
          { index: i, length: c.length + t, max: cfg.maxPositions },
        );
      const adapter = s.adapter ?? null;
      this.adapters.checkUse(OP, `steps[${i}].adapter`, adapter);
      for (let j = 0; j < t; j++) ids.push(adapter);
    }
    const first = ids[0]!;
    const uniform = ids.every((a) => a === first) ? first : undefined;
    this.adapters.checkBatch(OP, ids, uniform);
    for (const s of steps) s.cache.reserve(s.ids.length);
    return { ids, uniform, merged: this.adapters.merged };
  }
}

function addInto(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! + y[i]!;
}

function isModelConfig(c: unknown): c is ModelConfig {
  return c !== null && typeof c === "object" && "family" in c && "hiddenSize" in c;
}

// out[o .. o + cols) = row `row` of a QuantMatrix stored [rows, cols] (an embedding row; exact)
function quantRow(out: Float32Array, o: number, q: QuantMatrix, row: number): void {
  const t = quantKernelType(q.type);
  const blocks = q.cols / 32;
  dequantizeBlocks(out, q.bytes, t, blocks, row * blocks * quantBlockBytes(t), o);
}

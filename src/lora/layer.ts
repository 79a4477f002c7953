// LoraLinear: a frozen base linear layer h = x·W + bias with named LoRA adapters, a set of active adapters and a
// stack of merged ones (popped last-in first-out). Row-major typed arrays of one dtype (float32 or float64).
// x: [n, dIn]; W: [dIn, dOut] ("in_out") or [dOut, dIn] ("out_in", PEFT/torch, read through transB, not copied);
// bias: [dOut]; each adapter: down [dIn, r], up [r, dOut], DoRA magnitude [dOut]. The layer holds the caller's
// weight array and merges into it in place. Every public method validates before it changes any state.

import { AdapterStateError, ArgumentError, ShapeError } from "../errors.js";
import { unpackPanels } from "../kernels/panel.js";
import { kernelFloat32Array, releaseKernelArray } from "../kernels/select.js";
import { dtypeName, type FloatArray, type Matrix } from "../matrix.js";
import { checkResultSize, fmtShape } from "../shape.js";
import { type AdapterOptions, type AdapterRecord, createAdapter } from "./adapter.js";
import {
  alloc,
  type BaseWeight,
  baseGradInput,
  baseProduct,
  fusedLoraProduct,
  variantContext,
  type WeightLayout,
} from "./base.js";
import { type Combination, combineAdapters } from "./combine.js";
import { dropout, dropoutBackward } from "./dropout.js";
import type { AdapterInfo, LoraLinearOptions, MergeReport, Parameter } from "./layer-types.js";
import { type Branch, checkRows, type ForwardCache, readLayerBase } from "./layer-types.js";
import { requireAllFinite } from "./merge.js";
import { addGroups, groupRows } from "./mixed.js";
import { requireFinite } from "./operand.js";
import { dequantizeMatrix, type QuantMatrix } from "./quant.js";
import { LORA_VARIANT } from "./variants.js";

export type { AdapterInfo, LoraLinearOptions, MergeReport, Parameter } from "./layer-types.js";

/** A frozen linear layer with named LoRA adapters (see docs/layer.md). */
export class LoraLinear {
  readonly dIn: number;
  readonly dOut: number;
  readonly dtype: "float32" | "float64";
  readonly layout: WeightLayout;
  readonly bias: FloatArray | undefined;
  private readonly base: BaseWeight;
  private readonly seed: number;
  private readonly exactUnmerge: boolean;
  private readonly logger: ((message: string) => void) | undefined;
  private readonly adapters = new Map<string, AdapterRecord>();
  private active: string[] = [];
  private readonly stack: { rec: AdapterRecord; record: unknown }[] = [];
  private original: FloatArray | null = null;
  private cache: ForwardCache | null = null;
  private isTraining = false;

  constructor(options: LoraLinearOptions) {
    const { base, bias } = readLayerBase("LoraLinear", options);
    this.dIn = base.dIn;
    this.dOut = base.dOut;
    this.layout = base.layout;
    this.dtype = dtypeName(base.data);
    this.bias = bias;
    this.base = base;
    this.seed = options.seed ?? 0;
    this.exactUnmerge = options.exactUnmerge === true;
    this.logger = options.logger;
  }

  /** Whether the base weight is a QuantMatrix (Q8_0/Q4_0), frozen for good: never merged into. */
  get isQuantized(): boolean {
    return this.base.quant !== undefined;
  }

  /**
   * The live base weight in the layer's layout (merged adapters folded in). A quantized base returns a dequantized
   * float32 copy in its stored shape, a packed one (options.packed) an unpacked copy [dIn, dOut].
   */
  get weight(): Matrix {
    if (this.base.quant) return dequantizeMatrix(this.base.quant.source as QuantMatrix);
    const { data, dIn, dOut } = this.base;
    if (this.base.packed) return { data: unpackPanels(data as Float32Array, dIn, dOut), rows: dIn, cols: dOut };
    return this.layout === "in_out" ? { data, rows: dIn, cols: dOut } : { data, rows: dOut, cols: dIn };
  }

  get activeAdapters(): readonly string[] {
    return [...this.active];
  }
  get adapterNames(): readonly string[] {
    return [...this.adapters.keys()];
  }
  get training(): boolean {
    return this.isTraining;
  }
  get isMerged(): boolean {
    return this.stack.length > 0;
  }
  get mergedAdapters(): readonly string[] {
    return this.stack.map((e) => e.rec.name);
  }

  /** Training mode turns dropout on and makes forward keep what backward needs. Returns this. */
  train(on = true): this {
    this.isTraining = on;
    if (!on) this.cache = null;
    return this;
  }

  /**
   * Adds an adapter: new ({r, alpha, ...}, initialised from a seed) or given ({down, up, ...}, copied). It becomes
   * active when no adapter is active.
   * @throws {AdapterStateError} "duplicate_adapter"   @throws {ShapeError} "invalid_rank", "shape_mismatch"
   */
  addAdapter(name: string, options: AdapterOptions): this {
    if (this.base.quant && (options as { useDora?: unknown })?.useDora === true) {
      throw new AdapterStateError(
        "adapter_state",
        `LoraLinear.addAdapter: adapter "${name}" uses DoRA, which needs the column norms of a float base weight; this layer's base is quantized (${this.base.quant.source.type})`,
        { name },
      );
    }
    const rec = createAdapter("LoraLinear.addAdapter", name, options, {
      dIn: this.dIn,
      dOut: this.dOut,
      weight: this.base.data,
      seed: this.seed,
      context: this.context(),
      has: (n) => this.adapters.has(n),
      // a packed layer's adapters live in kernel memory too, so their products read them in place
      allocLowRank: this.base.packed ? kernelFloat32Array : undefined,
    });
    this.adapters.set(name, rec);
    if (this.active.length === 0) this.active = [name];
    this.cache = null;
    return this;
  }

  /** Removes an adapter (and from the active set). Refused while it is merged. */
  removeAdapter(name: string): this {
    const rec = this.get("LoraLinear.removeAdapter", name);
    if (this.stack.some((e) => e.rec === rec)) {
      throw new AdapterStateError(
        "adapter_state",
        `LoraLinear.removeAdapter: adapter "${name}" is merged into the base weight; call unmerge() first`,
        {
          name,
        },
      );
    }
    this.adapters.delete(name);
    this.releaseLowRank(rec);
    this.active = this.active.filter((a) => a !== name);
    this.cache = null;
    return this;
  }

  /**
   * Sets an adapter's scaling (its term is scaling·(x·down)·up; PEFT's set_scale sets alpha/r × scale). Refused
   * while it is merged.
   * @throws {ArgumentError} "invalid_argument" (not a finite number)   @throws {AdapterStateError}
   */
  setScaling(name: string, scaling: number): this {
    const op = "LoraLinear.setScaling";
    const rec = this.get(op, name);
    requireFinite(op, "scaling", scaling);
    if (this.stack.some((e) => e.rec === rec))
      throw new AdapterStateError(
        "adapter_state",
        `${op}: adapter "${name}" is merged into the base weight; call unmerge() first`,
        { name },
      );
    rec.scaling = scaling;
    this.cache = null;
    return this;
  }

  /** Sets the active adapters (their terms are summed in forward). */
  setActive(names: readonly string[]): this {
    const op = "LoraLinear.setActive";
    if (!Array.isArray(names)) {
      throw new ArgumentError("invalid_argument", `${op}: names must be an array of adapter names`, { name: "names" });
    }
    for (const n of names) this.get(op, n);
    this.active = [...new Set(names)];
    this.cache = null;
    return this;
  }

  /** Facts and live matrices of one adapter. */
  adapter(name: string): AdapterInfo {
    const a = this.get("LoraLinear.adapter", name);
    const info: AdapterInfo = {
      name: a.name,
      r: a.r,
      alpha: a.alpha,
      scaling: a.scaling,
      down: a.down as Matrix,
      up: a.up as Matrix,
      useDora: a.useDora,
      dropout: a.dropout,
    };
    if (a.magnitude) info.magnitude = a.magnitude;
    return info;
  }

  /**
   * h = x·W + bias + Σ over active, unmerged adapters of their terms (merged ones are already in W). With
   * adapterIds, row i uses adapter adapterIds[i] only (null = base), inference only.
   * @param x [n, dIn]   @returns h [n, dOut]
   * @throws {ShapeError} x or adapterIds do not fit   @throws {AdapterStateError} unknown id, merged, DoRA in a mixed batch
   */
  forward(x: Matrix, options: { adapterIds?: readonly (string | null)[] } = {}): Matrix {
    const op = "LoraLinear.forward";
    const xm = this.checkRows(op, "x", x, this.dIn);
    const n = xm.rows;
    checkResultSize(op, "h", [n, this.dOut]); // before anything is allocated
    const groups =
      options.adapterIds === undefined
        ? null
        : groupRows(op, options.adapterIds, n, (id) => this.adapters.get(id), this.mergedAdapters);
    const branches = groups ? [] : this.unmergedActive();
    // one plain LoRA adapter without dropout: x·W and its term in one fused product (bias added after)
    const one = branches.length === 1 ? branches[0]! : null;
    const fuse = one !== null && one.variant === LORA_VARIANT && !(this.isTraining && one.dropout > 0);
    const f = fuse ? fusedLoraProduct(xm.data, this.base, one.down.data, one.up.data, one.r, one.scaling, n) : null;
    const h = f ? f.h : baseProduct(alloc(xm.data, n * this.dOut), xm.data, this.base, n); // x·W [n, dOut]
    if (this.bias) {
      const b = this.bias;
      for (let k = 0; k < h.length; k++) h[k] = h[k]! + b[k % this.dOut]!;
    }
    const ctx = this.context();
    if (groups) {
      addGroups(ctx, xm.data, h, groups);
      this.cache = { kind: "mixed" };
      return { data: h, rows: n, cols: this.dOut };
    }
    // the fused adapter's term is already in h; the others are added one by one
    const done: Branch[] = f ? [{ rec: one!, xb: xm.data, keep: null, cache: f.t }] : [];
    for (const rec of f ? [] : branches) {
      const drop = this.isTraining && rec.dropout > 0 ? dropout(xm.data, rec.dropout, rec.rng) : null;
      const xb = drop ? drop.xb : xm.data;
      done.push({
        rec,
        xb,
        keep: drop ? drop.keep : null,
        cache: rec.variant.forward(ctx, rec, xb, n, h, drop !== null),
      });
    }
    this.cache = this.isTraining ? { kind: "single", n, branches: done } : null;
    return { data: h, rows: n, cols: this.dOut };
  }

  /**
   * Back-propagates dH [n, dOut] through the last training-mode forward: returns dX [n, dIn] and accumulates the
   * gradients of the active, unmerged adapters (dDown, dUp, DoRA dMagnitude). The base weight gets none.
   * @throws {AdapterStateError} "adapter_state" with no forward to differentiate
   */
  backward(dH: Matrix): Matrix {
    const op = "LoraLinear.backward";
    const c = this.cache;
    if (c === null || c.kind !== "single") {
      const why =
        c === null
          ? "no training-mode forward pass to differentiate; call train() and forward(x) first (merge, unmerge, setActive, addAdapter and removeAdapter clear it)"
          : "the last forward was a mixed-adapter batch, which is inference only";
      throw new AdapterStateError("adapter_state", `${op}: ${why}`, {});
    }
    const g = this.checkRows(op, "dH", dH, this.dOut);
    if (g.rows !== c.n) {
      throw new ShapeError(
        "shape_mismatch",
        `${op}: dH has shape ${fmtShape([g.rows, g.cols])}, expected [${c.n}, ${this.dOut}] like the last forward's output`,
        {
          name: "dH",
          shape: [g.rows, g.cols],
          expected: [c.n, this.dOut],
        },
      );
    }
    const n = c.n;
    const dX = alloc(g.data, n * this.dIn);
    const ctx = this.context();
    let up = g.data; // gradient w.r.t. the running output, walked back through the adapters in reverse order
    for (let k = c.branches.length - 1; k >= 0; k--) {
      const b = c.branches[k]!;
      if (b.keep === null) up = b.rec.variant.backward(ctx, b.rec, b.cache, b.xb, n, up, dX);
      else {
        const dXb = alloc(dX, dX.length);
        up = b.rec.variant.backward(ctx, b.rec, b.cache, b.xb, n, up, dXb);
        dropoutBackward(dX, dXb, b.keep, b.rec.dropout);
      }
    }
    baseGradInput(dX, up, this.base, n, 1, 1); // + up·Wᵀ
    return { data: dX, rows: n, cols: this.dIn };
  }

  /** The trainable arrays of the active, unmerged adapters with their gradients (live arrays). */
  parameters(): Parameter[] {
    const out: Parameter[] = [];
    for (const a of this.unmergedActive()) {
      out.push({ adapter: a.name, role: "down", value: a.down.data, grad: a.gradDown });
      out.push({ adapter: a.name, role: "up", value: a.up.data, grad: a.gradUp });
      if (a.magnitude && a.gradMagnitude)
        out.push({ adapter: a.name, role: "magnitude", value: a.magnitude, grad: a.gradMagnitude });
    }
    return out;
  }

  /** Zeroes the gradient accumulators of every adapter. */
  zeroGrad(): this {
    for (const a of this.adapters.values()) {
      a.gradDown.fill(0);
      a.gradUp.fill(0);
      a.gradMagnitude?.fill(0);
    }
    return this;
  }

  /**
   * Folds adapters (default: the active ones) into the base weight, skipping already merged ones with a warning.
   * safe: computes into a copy and rejects non-finite results, leaving W untouched. dryRun: does that and stops
   * there (W and the merged state untouched), to check several layers before merging any.
   * @throws {AdapterStateError} "unknown_adapter"   @throws {ArgumentError} "non_finite" (safe or dryRun only)
   */
  merge(names?: readonly string[], options: { safe?: boolean; dryRun?: boolean } = {}): MergeReport {
    const op = "LoraLinear.merge";
    this.refuseQuantized(op);
    if (names !== undefined && !Array.isArray(names)) {
      throw new ArgumentError("invalid_argument", `${op}: names must be an array of adapter names`, { name: "names" });
    }
    const recs = (names ?? this.active).map((n) => this.get(op, n));
    const warnings: string[] = [];
    const todo: AdapterRecord[] = [];
    for (const rec of recs) {
      if (this.stack.some((e) => e.rec === rec) || todo.includes(rec))
        warnings.push(`${op}: adapter "${rec.name}" is already merged; skipped`);
      else todo.push(rec);
    }
    if (recs.length === 0) warnings.push(`${op}: no adapters to merge (none given and none active)`);
    const w = this.base.data;
    const check = options.safe === true || options.dryRun === true;
    const target = check ? w.slice() : w;
    const first = this.stack.length === 0 && todo.length > 0;
    const needW0 = todo.some((r) => r.variant.mergeReadsUnmerged);
    const w0 = first && (needW0 || this.exactUnmerge) ? w.slice() : needW0 ? this.unmergedWeight() : w;
    const ctx = variantContext({ ...this.base, data: target }, this.bias, () => w0);
    const records = todo.map((rec) => ({ rec, record: rec.variant.merge(ctx, rec, target, w0) }));
    if (check) {
      const logical = this.base.packed ? unpackPanels(target as Float32Array, this.dIn, this.dOut) : target;
      requireAllFinite(op, logical, this.weight.cols, "the base weight");
      if (options.dryRun === true) return this.report(todo, warnings);
      w.set(target);
    }
    if (first && this.exactUnmerge) this.original = w0;
    this.stack.push(...records);
    if (todo.length > 0) this.cache = null;
    return this.report(todo, warnings);
  }

  /** Takes every merged adapter out of the base weight, last merged first (exact with exactUnmerge). */
  unmerge(): MergeReport {
    this.refuseQuantized("LoraLinear.unmerge");
    const warnings: string[] = [];
    if (this.stack.length === 0) warnings.push("LoraLinear.unmerge: nothing is merged; nothing to do");
    const done: AdapterRecord[] = [];
    const ctx = this.context();
    while (this.stack.length > 0) {
      const e = this.stack.pop()!;
      e.rec.variant.unmerge(ctx, e.rec, this.base.data, e.record);
      done.push(e.rec);
    }
    if (this.original) {
      this.base.data.set(this.original);
      this.original = null;
    }
    if (done.length > 0) this.cache = null;
    return this.report(done, warnings);
  }

  /**
   * Merges the active adapters (safe if asked), then drops every adapter: the layer becomes a plain linear layer.
   * @returns the base weight (live array) in the layer's layout
   */
  mergeAndUnload(options: { safe?: boolean } = {}): Matrix {
    this.refuseQuantized("LoraLinear.mergeAndUnload");
    this.merge(this.active.length > 0 ? this.active : [], options);
    for (const rec of this.adapters.values()) this.releaseLowRank(rec);
    this.adapters.clear();
    this.active = [];
    this.stack.length = 0;
    this.original = null;
    this.cache = null;
    return this.weight;
  }

  /**
   * Adds adapter `name` combining sources with weights (PEFT add_weighted_adapter): "cat" (exact: ranks add,
   * Δ = Σ wᵢ·ΔWᵢ) or "linear" (equal ranks; combines down and up separately, with cross terms; docs/layer.md).
   */
  addWeightedAdapter(
    sources: readonly string[],
    weights: readonly number[],
    name: string,
    options: { combination: Combination },
  ): this {
    const op = "LoraLinear.addWeightedAdapter";
    const recs = Array.isArray(sources) ? sources.map((s) => this.get(op, s)) : [];
    const { down, up } = combineAdapters(op, recs, weights, options?.combination);
    return this.addAdapter(name, { down, up, alpha: down.cols });
  }

  // A quantized base is never merged into: W + ΔW would have to be re-quantized, which changes W everywhere.
  private refuseQuantized(op: string): void {
    if (!this.base.quant) return;
    throw new AdapterStateError(
      "adapter_state",
      `${op}: the base weight is quantized (${this.base.quant.source.type}); merging would re-quantize W + ΔW and lose precision everywhere. Run the adapters unmerged, or merge into a float32 copy (dequantizeMatrix)`,
      {},
    );
  }

  private get(op: string, name: unknown): AdapterRecord {
    const rec = typeof name === "string" ? this.adapters.get(name) : undefined;
    if (rec === undefined) {
      const known = [...this.adapters.keys()].map((k) => `"${k}"`).join(", ") || "none";
      throw new AdapterStateError(
        "unknown_adapter",
        `${op}: no adapter named ${JSON.stringify(name)} (adapters: ${known})`,
        {
          name,
        },
      );
    }
    return rec;
  }

  private context() {
    return variantContext(this.base, this.bias, () => this.unmergedWeight());
  }

  /** The weight with nothing merged: the live one, the exactUnmerge copy, or a copy with the stack undone. */
  private unmergedWeight(): FloatArray {
    if (this.stack.length === 0) return this.base.data;
    if (this.original) return this.original;
    const copy = this.base.data.slice();
    const ctx = variantContext({ ...this.base, data: copy }, this.bias);
    for (let k = this.stack.length - 1; k >= 0; k--) {
      const e = this.stack[k]!;
      e.rec.variant.unmerge(ctx, e.rec, copy, e.record);
    }
    return copy;
  }

  private unmergedActive(): AdapterRecord[] {
    return this.active.map((n) => this.adapters.get(n)!).filter((rec) => !this.stack.some((e) => e.rec === rec));
  }

  // gives a removed adapter's down and up back to kernel memory (a packed layer allocates them there: addAdapter)
  private releaseLowRank(rec: AdapterRecord): void {
    if (this.base.packed) for (const m of [rec.down, rec.up]) releaseKernelArray(m.data as Float32Array);
  }

  private checkRows(op: string, name: string, m: Matrix, cols: number): Matrix {
    return checkRows(op, name, m, cols, this.base);
  }

  private report(done: AdapterRecord[], warnings: string[]): MergeReport {
    for (const w of warnings) this.logger?.(w);
    return { adapters: done.map((a) => a.name), warnings };
  }
}

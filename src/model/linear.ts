// One projection of the model (q_proj, c_attn, down_proj, …): a LoraLinear over a kernel-resident weight, plus its
// bias, applied per row because an adapter may replace a module's bias (PEFT bias="lora_only"/"all").
// x: [n, dIn] → h: [n, dOut]. A float32 weight is held pre-packed in kernel panels as the logical [dIn, dOut]
// (weights.ts packs it at load, whatever the checkpoint's layout; LoraLinear's options.packed); a quantized weight
// (QuantMatrix from a GGUF base) is always [dOut, dIn] ("out_in"), whatever the architecture.

import { AdapterStateError } from "../errors.js";
import { addRowVector, WASM_MIN_MACS } from "../kernels/select.js";
import { LoraLinear } from "../lora/layer.js";
import type { QuantMatrix } from "../lora/quant.js";

/** Which adapter each row of a batch uses (null: none), and, when every row uses the same one, that name. */
export interface RowPlan {
  ids: readonly (string | null)[];
  /** The adapter every row uses (null: every row uses none); undefined when rows differ. */
  uniform: string | null | undefined;
  /** The adapter merged into the weights, if any (then every row uses it). */
  merged: string | null;
}

/** A model projection with adapters. */
export class ModelLinear {
  readonly layer: LoraLinear;
  readonly path: string;
  readonly dIn: number;
  readonly dOut: number;
  readonly bias: Float32Array | null;
  /** Adapter name → the bias it replaces this module's with. */
  readonly biasOverrides = new Map<string, Float32Array>();
  /** Names of DoRA adapters on this layer (they cannot share a batch with other adapters). */
  readonly dora = new Set<string>();

  /** weight: packed panels of [dIn, dOut] (panelLength(dIn, dOut) floats), or a QuantMatrix stored [dOut, dIn]. */
  constructor(path: string, weight: Float32Array | QuantMatrix, dIn: number, dOut: number, bias: Float32Array | null) {
    this.path = path;
    this.dIn = dIn;
    this.dOut = dOut;
    this.bias = bias;
    // a QuantMatrix (GGUF Q8_0 / Q4_0, always "out_in") is the layer's frozen base as is: never merged into
    this.layer = new LoraLinear(
      weight instanceof Float32Array
        ? { weight: { data: weight, rows: dIn, cols: dOut }, packed: true }
        : { weight, layout: "out_in" },
    );
  }

  has(name: string): boolean {
    return this.layer.adapterNames.includes(name);
  }

  /**
   * h = x·W (+ each row's adapter term) + each row's bias. Plain adapters go through LoraLinear's mixed-batch path
   * for every batch, solo or mixed, so a row gets the same operations whatever else is in the batch; a DoRA adapter
   * (not allowed in mixed batches) runs as the layer's only active adapter when the whole batch uses it.
   */
  forward(x: Float32Array, n: number, plan: RowPlan): Float32Array {
    let h: Float32Array;
    if (this.layer.isMerged) h = this.run(x, n, null, null);
    else if (plan.uniform !== undefined && plan.uniform !== null && this.dora.has(plan.uniform)) {
      this.layer.setActive([plan.uniform]);
      try {
        h = this.run(x, n, null, null);
      } finally {
        this.layer.setActive([]);
      }
    } else {
      const ids = plan.ids.map((id) => (id !== null && this.has(id) ? id : null));
      const dora = ids.find((id) => id !== null && this.dora.has(id));
      if (dora !== undefined)
        throw new AdapterStateError(
          "adapter_state",
          `CausalLM.forward: adapter "${dora}" is a DoRA adapter, which cannot share a batch with other adapters (module ${this.path}); run its sequences in a batch of their own`,
          { name: dora, module: this.path },
        );
      h = this.run(x, n, ids, this.padding(ids));
    }
    this.addBias(h, n, plan.ids);
    return h;
  }

  // The kernels pick TypeScript or WebAssembly by a product's size (WASM_MIN_MACS), and the two round differently,
  // so a row's bits would depend on how many rows share its product. Zero rows are appended (to a group of rows
  // with one adapter, or to the whole batch) until every product of this layer is over the threshold whatever the
  // batch: then a row gets the same kernels alone as in any batch. Real models never need it (dIn·r ≥ 4096 at
  // r = 8 from dIn = 512); the tiny test models do.
  private padding(ids: readonly (string | null)[]): (string | null)[] {
    const pad: (string | null)[] = [];
    const counts = new Map<string, number>();
    for (const id of ids) if (id !== null) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, c] of counts) {
      const need = Math.ceil(WASM_MIN_MACS / (Math.min(this.dIn, this.dOut) * this.layer.adapter(id).r));
      for (let k = c; k < need; k++) pad.push(id);
    }
    return pad;
  }

  // x [n, dIn] (+ pad zero rows, adapter ids as given) → h [n, dOut] without bias.
  private run(x: Float32Array, n: number, ids: (string | null)[] | null, pad: (string | null)[] | null): Float32Array {
    const extra = pad ?? [];
    const minRows = Math.ceil(WASM_MIN_MACS / (this.dIn * this.dOut));
    while (n + extra.length < minRows) extra.push(null);
    const rows = n + extra.length;
    let xs = x;
    if (rows > n) {
      xs = new Float32Array(rows * this.dIn);
      xs.set(x.subarray(0, n * this.dIn));
    }
    const m = { data: xs, rows, cols: this.dIn };
    const out = ids === null ? this.layer.forward(m) : this.layer.forward(m, { adapterIds: [...ids, ...extra] });
    const h = out.data as Float32Array;
    return rows > n ? h.slice(0, n * this.dOut) : h;
  }

  // Each row's bias (its adapter's override, else the module's), added to runs of consecutive rows sharing one.
  private addBias(h: Float32Array, n: number, ids: readonly (string | null)[]): void {
    const d = this.dOut;
    const biasOf = (i: number): Float32Array | null => {
      const id = ids[i];
      return (id !== null && id !== undefined ? this.biasOverrides.get(id) : undefined) ?? this.bias;
    };
    for (let i = 0; i < n; ) {
      const b = biasOf(i);
      let end = i + 1;
      while (end < n && biasOf(end) === b) end++;
      if (b !== null) addRowVector(h.subarray(i * d, end * d), end - i, d, b);
      i = end;
    }
  }
}

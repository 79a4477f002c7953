// An adapter cache bounded in bytes (S-LoRA / LoRAX style): adapters are attached on demand from a loader and,
// when the attached ones hold more than maxBytes, the least recently used are detached (never one the current
// request needs, never the merged one). A detached adapter is loaded again the next time it is asked for.

import { ArgumentError } from "../errors.js";
import type { RuntimeAdapter } from "./adapters.js";
import type { CausalLM } from "./model.js";
import { showValue } from "./show.js";

/** Options of AdapterCache. */
export interface AdapterCacheOptions {
  /** Most bytes of adapter tensors kept attached (the adapters a call needs are kept even above it). */
  maxBytes: number;
  /** Loads an adapter by name (e.g. from a folder: name → loadAdapter(dir)). */
  load: (name: string) => Promise<RuntimeAdapter> | RuntimeAdapter;
}

/** Attaches adapters to a model on demand, within a byte budget. */
export class AdapterCache {
  private readonly model: CausalLM;
  private readonly maxBytes: number;
  private readonly load: AdapterCacheOptions["load"];
  /** Names attached by this cache, least recently used first. */
  private readonly order: string[] = [];
  /** Loads (and evictions) since creation, for monitoring. */
  loads = 0;
  evictions = 0;

  constructor(model: CausalLM, options: AdapterCacheOptions) {
    if (typeof (model as { attachAdapter?: unknown })?.attachAdapter !== "function")
      throw new ArgumentError("invalid_argument", `AdapterCache: model is ${showValue(model)}, expected a CausalLM`, {
        name: "model",
      });
    if (typeof options?.maxBytes !== "number" || !(options.maxBytes >= 0))
      throw new ArgumentError(
        "invalid_argument",
        `AdapterCache: maxBytes is ${showValue(options?.maxBytes)}, expected a number ≥ 0`,
        {
          name: "maxBytes",
        },
      );
    if (typeof options.load !== "function")
      throw new ArgumentError("invalid_argument", "AdapterCache: load must be a function name → adapter", {
        name: "load",
      });
    this.model = model;
    this.maxBytes = options.maxBytes;
    this.load = options.load;
  }

  /** Bytes of the adapters this cache holds attached. */
  get bytes(): number {
    return this.order.reduce((s, n) => s + this.model.adapterInfo(n).bytes, 0);
  }

  /** The names this cache holds, least recently used first. */
  get names(): string[] {
    return [...this.order];
  }

  /**
   * Makes sure every named adapter is attached (loading the missing ones), marks them most recently used, then
   * detaches least recently used others until the budget holds. Nulls are ignored.
   */
  async acquire(names: readonly (string | null | undefined)[]): Promise<void> {
    if (!Array.isArray(names))
      throw new ArgumentError(
        "invalid_argument",
        `AdapterCache.acquire: names is ${showValue(names)}, expected an array of adapter names (or nulls)`,
        { name: "names" },
      );
    // names of ours that someone detached directly are no longer ours to count or evict
    const attached = new Set(this.model.adapterNames);
    for (let i = this.order.length - 1; i >= 0; i--) if (!attached.has(this.order[i]!)) this.order.splice(i, 1);
    const want = [...new Set(names.filter((n): n is string => typeof n === "string"))];
    for (const name of want) {
      const at = this.order.indexOf(name);
      if (at >= 0) this.order.splice(at, 1);
      else if (!this.model.adapterNames.includes(name)) {
        this.model.attachAdapter(name, await this.load(name));
        this.loads++;
      } else continue; // attached by someone else: not ours to evict
      this.order.push(name);
    }
    let total = this.bytes;
    for (let i = 0; i < this.order.length && total > this.maxBytes; ) {
      const name = this.order[i]!;
      if (want.includes(name) || this.model.mergedAdapter === name) {
        i++;
        continue;
      }
      total -= this.model.adapterInfo(name).bytes;
      this.model.detachAdapter(name);
      this.order.splice(i, 1);
      this.evictions++;
    }
  }
}

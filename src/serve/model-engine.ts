// lorakit's model runtime (CausalLM) as the server's Engine: one KV cache per sequence, one CausalLM.forward per
// step over every running sequence with its own adapter (rows grouped by adapter inside each projection), the last
// position's logits of each. Adapter files are read by the host (`readAdapter`: a folder under Node), so this
// module stays browser-safe.

import { ServeError } from "../errors.js";
import type { CausalLM, KvCache, TextTokenizer } from "../model/index.js";
import type { Engine, EngineInfo, StepEntry } from "./engine.js";

/** What CausalLM.attachAdapter takes (a parsed PEFT or MLX adapter). */
export type LoadedAdapter = Parameters<CausalLM["attachAdapter"]>[1];

/** Options of ModelEngine. */
export interface ModelEngineOptions {
  model: CausalLM;
  /** null: prompts are token ids only. */
  tokenizer: TextTokenizer | null;
  /** Reads an adapter from a location (a folder path under Node). */
  readAdapter: (location: string) => Promise<LoadedAdapter>;
}

/** Serves a CausalLM: Engine over the model runtime. */
export class ModelEngine implements Engine {
  readonly info: EngineInfo;
  readonly model: CausalLM;
  private readonly tokenizer: TextTokenizer | null;
  private readonly readAdapter: ModelEngineOptions["readAdapter"];
  private readonly caches = new Map<number, KvCache>();

  constructor(options: ModelEngineOptions) {
    this.model = options.model;
    this.tokenizer = options.tokenizer;
    this.readAdapter = options.readAdapter;
    const c = options.model.config;
    this.info = {
      vocabSize: c.vocabSize,
      contextLength: c.maxPositions,
      eosTokenIds: [...c.eosTokenIds],
      hasTokenizer: options.tokenizer !== null,
    };
  }

  encode(text: string): number[] {
    return this.needTokenizer().encode(text);
  }

  decode(ids: readonly number[]): string {
    return this.needTokenizer().decode(ids);
  }

  private needTokenizer(): TextTokenizer {
    if (!this.tokenizer)
      throw new ServeError("invalid_request", 400, "ModelEngine: the model has no tokenizer (send token ids)");
    return this.tokenizer;
  }

  async step(entries: readonly StepEntry[]): Promise<Float32Array> {
    const V = this.info.vocabSize;
    const steps = entries.map((e) => {
      let cache = this.caches.get(e.seq);
      if (!cache) {
        // room for the prompt and some generated tokens; the cache grows on demand
        cache = this.model.createCache(e.tokens.length + 16);
        this.caches.set(e.seq, cache);
      }
      return { ids: e.tokens, cache, adapter: e.adapter };
    });
    const rows = this.model.forward(steps); // one [1, V] row per sequence: its last position
    const out = new Float32Array(entries.length * V);
    rows.forEach((row, i) => {
      out.set(row, i * V);
    });
    return out;
  }

  release(seq: number): void {
    this.caches.get(seq)?.dispose(); // its kernel memory serves the next sequences
    this.caches.delete(seq);
  }

  /** Sequences whose cache is held (for tests and monitoring). */
  get liveSequences(): number {
    return this.caches.size;
  }

  adapters(): string[] {
    return this.model.adapterNames;
  }

  async attachAdapter(name: string, location: string): Promise<void> {
    this.model.attachAdapter(name, await this.readAdapter(location));
  }

  detachAdapter(name: string): void {
    this.model.detachAdapter(name);
  }
}

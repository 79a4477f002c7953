// Generation: prompts (token ids, each with its adapter or none) decoded together, one forward step per token for
// the whole batch; sequences leave the batch when they hit a stop token or their token budget. Every sequence has
// its own seeded generator, so its tokens do not depend on what else is in the batch.

import { ArgumentError } from "../errors.js";
import { createRng, type Rng } from "../lora/rng.js";
import type { KvCache } from "./kv-cache.js";
import type { CausalLM } from "./model.js";
import { readSampling, type SamplingOptions, sampleToken } from "./sampling.js";

/** One sequence to continue. */
export interface GenerateRequest {
  /** Prompt token ids (at least one). */
  ids: readonly number[];
  adapter?: string | null;
  /** Seed of this sequence's generator (default: options.seed + its index). */
  seed?: number;
}

/** Options of generate. */
export interface GenerateOptions extends SamplingOptions {
  /** New tokens at most per sequence (default 32). */
  maxTokens?: number;
  /** Token ids that end a sequence (default: config.json's eos_token_id). The stop token is reported, then it ends. */
  stop?: readonly number[];
  seed?: number;
}

/** One generated token. */
export interface TokenEvent {
  /** Index of the request. */
  index: number;
  token: number;
  /** Set on the sequence's last token: "stop" (a stop token) or "length" (maxTokens or the model's context). */
  finish: "stop" | "length" | null;
}

const OP = "generate";

/**
 * Generates tokens for a batch of requests, yielding each token as it comes (sequences interleaved step by step).
 * @throws {ArgumentError} bad options   @throws what CausalLM.forward throws (unknown adapter, context length)
 * @example for (const e of generate(model, [{ ids: [1, 2, 3] }], { maxTokens: 8 })) console.log(e.token)
 */
export function* generate(
  model: CausalLM,
  requests: readonly GenerateRequest[],
  options: GenerateOptions = {},
): Generator<TokenEvent, void, void> {
  const sampling = readSampling(OP, options);
  const maxTokens = options.maxTokens ?? 32;
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 0)
    throw new ArgumentError(
      "invalid_argument",
      `${OP}: maxTokens is ${JSON.stringify(maxTokens)}, expected an integer ≥ 0`,
      {
        name: "maxTokens",
      },
    );
  const seed = options.seed ?? 0;
  const stop = new Set(options.stop ?? model.config.eosTokenIds);
  interface Live {
    index: number;
    cache: KvCache;
    adapter: string | null;
    rng: Rng;
    next: readonly number[];
    made: number;
  }
  if (maxTokens === 0) return;
  let live: Live[] = requests.map((r, index) => ({
    index,
    cache: model.createCache(Math.min(model.config.maxPositions, r.ids.length + maxTokens)),
    adapter: r.adapter ?? null,
    rng: createRng(r.seed ?? seed + index),
    next: r.ids,
    made: 0,
  }));
  const limit = model.config.maxPositions;
  try {
    while (live.length > 0) {
      const logits = model.forward(live.map((s) => ({ ids: s.next, cache: s.cache, adapter: s.adapter })));
      const still: Live[] = [];
      for (let i = 0; i < live.length; i++) {
        const s = live[i]!;
        const token = sampleToken(logits[i]!, sampling, s.rng);
        s.made++;
        const finish = stop.has(token) ? "stop" : s.made >= maxTokens || s.cache.length >= limit ? "length" : null;
        if (finish === null) {
          s.next = [token];
          still.push(s);
        }
        yield { index: s.index, token, finish };
        if (finish !== null) s.cache.dispose(); // its kernel memory serves the next sequences
      }
      live = still;
    }
  } finally {
    // a consumer that stops early (break, return, throw) leaves the unfinished caches here
    for (const s of live) s.cache.dispose();
  }
}

/** Runs generate to the end and returns each request's new tokens. */
export function generateAll(
  model: CausalLM,
  requests: readonly GenerateRequest[],
  options: GenerateOptions = {},
): number[][] {
  const out: number[][] = requests.map(() => []);
  for (const e of generate(model, requests, options)) out[e.index]!.push(e.token);
  return out;
}

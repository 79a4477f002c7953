// Generation: prompts (token ids, each with its adapter or none) decoded together, one forward step per token for
// the whole batch; sequences leave the batch when they hit a stop token or their token budget. Every sequence has
// its own seeded generator, so its tokens do not depend on what else is in the batch.

import { ArgumentError } from "../errors.js";
import { createRng, type Rng } from "../lora/rng.js";
import type { KvCache } from "./kv-cache.js";
import type { CausalLM } from "./model.js";
import { readSampling, type SamplingOptions, sampleToken } from "./sampling.js";
import { showValue } from "./show.js";

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
  if (typeof (model as { forward?: unknown })?.forward !== "function")
    throw bad("model", model, "a CausalLM (loadModelDir, loadGgufModel or new CausalLM)");
  const o = options ?? {};
  if (typeof o !== "object") throw bad("options", o, "an object { maxTokens, stop, seed, temperature, … }");
  const sampling = readSampling(OP, o);
  const maxTokens = o.maxTokens ?? 32;
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 0) throw bad("maxTokens", maxTokens, "an integer ≥ 0");
  const seed = readSeed("seed", o.seed ?? 0);
  const vocab = model.config.vocabSize;
  // the given stop ids are checked; config.json's eos ids are taken as they are (tiny test models name ids past
  // their vocabulary, which simply never come)
  const stopIds = o.stop ?? [];
  if (!Array.isArray(stopIds)) throw bad("stop", stopIds, `an array of token ids in [0, ${vocab - 1}]`);
  for (let i = 0; i < stopIds.length; i++)
    if (!Number.isSafeInteger(stopIds[i]) || stopIds[i]! < 0 || stopIds[i]! >= vocab)
      throw bad(`stop[${i}]`, stopIds[i], `a token id in [0, ${vocab - 1}] (vocab_size ${vocab})`);
  const stop = new Set(o.stop == null ? model.config.eosTokenIds : stopIds);
  if (!Array.isArray(requests)) throw bad("requests", requests, "an array of { ids, adapter?, seed? }");
  for (let i = 0; i < requests.length; i++) {
    const r = requests[i];
    if (r === null || typeof r !== "object") throw bad(`requests[${i}]`, r, "{ ids, adapter?, seed? }");
    if (!Array.isArray(r.ids) || r.ids.length === 0)
      throw bad(`requests[${i}].ids`, r.ids, "a non-empty array of token ids");
    if (r.seed !== undefined) readSeed(`requests[${i}].seed`, r.seed);
  }
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

function bad(name: string, v: unknown, expected: string): ArgumentError {
  return new ArgumentError("invalid_argument", `${OP}: ${name} is ${showValue(v)}, expected ${expected}`, {
    name,
    value: v,
  });
}

// A seed: any safe integer (createRng mixes in all its bits)
function readSeed(name: string, v: unknown): number {
  if (!Number.isSafeInteger(v)) throw bad(name, v, "an integer (a safe one: |seed| < 2^53)");
  return v as number;
}

/** Runs generate to the end and returns each request's new tokens. */
export function generateAll(
  model: CausalLM,
  requests: readonly GenerateRequest[],
  options: GenerateOptions = {},
): number[][] {
  // generate checks everything at its first step, so a non-array gets its error there, not a TypeError here
  const out: number[][] = Array.isArray(requests) ? requests.map(() => []) : [];
  for (const e of generate(model, requests, options)) out[e.index]!.push(e.token);
  return out;
}

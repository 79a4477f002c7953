// Choosing the next token from logits [vocab]: greedy (temperature 0), or a draw from softmax(logits / T) after
// top-k (keep the k largest) and top-p (keep the smallest set of most likely tokens whose probability reaches p),
// with a seeded generator (lora/rng.ts), so a seed gives the same tokens on every platform.

import { ArgumentError } from "../errors.js";
import type { Rng } from "../lora/rng.js";
import { showValue } from "./show.js";

/** Sampling settings. */
export interface SamplingOptions {
  /** 0 (default): greedy. > 0: sample from softmax(logits / temperature). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined: all). */
  topK?: number;
  /** Keep the most likely tokens up to cumulative probability p, 0 < p ≤ 1 (default 1: all). */
  topP?: number;
}

/** Validated settings. */
export interface Sampling {
  temperature: number;
  topK: number;
  topP: number;
}

/** Checks sampling options; throws invalid_argument naming the bad one. */
export function readSampling(op: string, o: SamplingOptions = {}): Sampling {
  o ??= {};
  const t = o.temperature ?? 0;
  const k = o.topK ?? 0;
  const p = o.topP ?? 1;
  const bad = (name: string, v: unknown, want: string) =>
    new ArgumentError("invalid_argument", `${op}: ${name} is ${showValue(v)}, expected ${want}`, {
      name,
      value: v,
    });
  if (typeof t !== "number" || !Number.isFinite(t) || t < 0) throw bad("temperature", t, "a finite number ≥ 0");
  if (!Number.isSafeInteger(k) || k < 0) throw bad("topK", k, "an integer ≥ 0 (0: no limit)");
  if (typeof p !== "number" || !(p > 0 && p <= 1)) throw bad("topP", p, "a number in (0, 1]");
  return { temperature: t, topK: k, topP: p };
}

/** Index of the largest logit (the lowest index among equals). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

// Scratch reused across calls (sampling is synchronous): probabilities [vocab], candidate indices, heap logits,
// sort keys; 24 bytes per token of the largest vocabulary seen (1.2 MB for GPT-2's), kept for the next call.
let probBuf = new Float64Array(0);
let idxBuf = new Int32Array(0);
let heapBuf = new Float32Array(0);
let keyBuf = new Float64Array(0);
const bits = new Uint32Array(1);
const bitsF = new Float32Array(bits.buffer);

function scratch(n: number): void {
  if (probBuf.length >= n) return;
  probBuf = new Float64Array(n);
  idxBuf = new Int32Array(n);
  heapBuf = new Float32Array(n);
  keyBuf = new Float64Array(n);
}

// rank order: a before b when its logit is larger, or equal with a lower index
function before(la: number, a: number, lb: number, b: number): boolean {
  return la > lb || (la === lb && a < b);
}

/** Vocabularies up to this size sort by one float64 key per token: 2^32 logit ranks × 2^21 indices < 2^53. */
const KEY_INDICES = 2 ** 21;

// idx[0 .. count) sorted in rank order. Up to KEY_INDICES tokens: each token becomes the exact float64
// rank(logit)·2^21 + index, rank = 2^32 − 1 − (the float32's bits made unsigned-monotonic, −0 as +0), sorted by the
// engine's numeric sort (~10× faster than a comparator); larger vocabularies use the comparator.
function sortRanked(logits: Float32Array, idx: Int32Array, count: number): Int32Array {
  const c = idx.subarray(0, count);
  if (logits.length > KEY_INDICES) return c.sort((a, b) => logits[b]! - logits[a]! || a - b);
  const keys = keyBuf.subarray(0, count);
  for (let j = 0; j < count; j++) {
    const i = c[j]!;
    bitsF[0] = logits[i]! === 0 ? 0 : logits[i]!;
    const b = bits[0]!;
    const up = b >= 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0; // increasing with the value
    keys[j] = (0xffffffff - up) * KEY_INDICES + i;
  }
  keys.sort();
  for (let j = 0; j < count; j++) c[j] = keys[j]! % KEY_INDICES;
  return c;
}

// The k first tokens in rank order (k < n), sorted: a heap of the best k seen (its root the worst of them), so a
// token that does not beat the root costs one comparison. O(n log k) at worst, ~O(n) on real logits.
function topK(logits: Float32Array, k: number): Int32Array {
  const n = logits.length;
  const idx = idxBuf;
  const hl = heapBuf;
  // the root (0) is the last in rank order among the heap's tokens
  const sift = (i: number, size: number) => {
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) return;
      let w = l;
      if (l + 1 < size && before(hl[w]!, idx[w]!, hl[l + 1]!, idx[l + 1]!)) w = l + 1;
      if (!before(hl[i]!, idx[i]!, hl[w]!, idx[w]!)) return;
      const ti = idx[i]!;
      const tl = hl[i]!;
      idx[i] = idx[w]!;
      hl[i] = hl[w]!;
      idx[w] = ti;
      hl[w] = tl;
      i = w;
    }
  };
  for (let i = 0; i < k; i++) {
    idx[i] = i;
    hl[i] = logits[i]!;
  }
  for (let i = (k >> 1) - 1; i >= 0; i--) sift(i, k);
  for (let i = k; i < n; i++) {
    const l = logits[i]!;
    if (before(l, i, hl[0]!, idx[0]!)) {
      idx[0] = i;
      hl[0] = l;
      sift(0, k);
    }
  }
  return sortRanked(logits, idx, k);
}

// The shortest prefix of `ranked` whose probabilities (probBuf), summed in order, reach `mass`: its length, and that
// sum (the whole of ranked when it falls short).
function prefix(ranked: Int32Array, mass: number): { keep: number; sum: number } {
  let sum = 0;
  let keep = 0;
  while (keep < ranked.length && sum < mass) sum += probBuf[ranked[keep++]!]!;
  return { keep, sum };
}

// The first tokens in rank order whose probabilities (probBuf, summing to total) reach p·total, sorted, and their sum:
// only the tokens with probability ≥ τ are sorted, a prefix of the rank order (exp is monotonic), with τ lowered
// until their mass reaches the cut (a flat distribution ends in a sort of every token, as before).
const TOP_P_THRESHOLDS = [1e-2, 1e-4, 1e-8, 1e-12, 0];
function topP(logits: Float32Array, total: number, p: number): Candidates {
  const n = logits.length;
  for (let t = 0; ; t++) {
    const tau = TOP_P_THRESHOLDS[t]!;
    let count = 0;
    for (let i = 0; i < n; i++) if (probBuf[i]! >= tau) idxBuf[count++] = i;
    const ranked = sortRanked(logits, idxBuf, count);
    const { keep, sum } = prefix(ranked, p * total);
    if (sum >= p * total || tau === 0) return { tokens: ranked.subarray(0, keep), total: sum };
  }
}

/** The tokens a draw chooses among and the sum of their probabilities (candidates). */
export interface Candidates {
  /** In rank order (logit descending, lower index first among equals); null: every token (no cut). */
  tokens: Int32Array | null;
  /** Σ e^((logit − max)/T) over them, summed in that order (index order when null). */
  total: number;
}

/**
 * The candidates of a draw under s's top-k / top-p cut; `tokens` is a view of scratch memory, valid until the next
 * call. Fills probBuf with the probabilities of those tokens. Exported for the tests.
 */
export function candidates(logits: Float32Array, s: Sampling): Candidates {
  const n = logits.length;
  scratch(n);
  const max = logits[argmax(logits)]!;
  const T = s.temperature;
  if (s.topK > 0 && s.topK < n) {
    const kept = topK(logits, s.topK);
    let sum = 0;
    for (const i of kept) {
      probBuf[i] = Math.exp((logits[i]! - max) / T);
      sum += probBuf[i]!;
    }
    if (s.topP === 1) return { tokens: kept, total: sum };
    const cut = prefix(kept, s.topP * sum);
    return { tokens: kept.subarray(0, cut.keep), total: cut.sum };
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    const p = Math.exp((logits[i]! - max) / T);
    probBuf[i] = p;
    total += p;
  }
  return s.topP < 1 ? topP(logits, total, s.topP) : { tokens: null, total };
}

/**
 * The next token from logits [vocab]. Greedy when temperature is 0; otherwise one uniform draw from `rng` over the
 * candidates (all tokens, or the top-k / top-p cut, see candidates), each with probability e^((logit − max)/T) over
 * their sum. Without a cut the draw walks the tokens in index order; with one, the cut in rank order. No call sorts
 * the whole vocabulary unless top-p needs tokens below 10^-12 of the most likely one: 0.3–3 ms for GPT-2's 50,257
 * tokens, against 23–29 ms for the sort of every token this replaced.
 * @example sampleToken(logits, { temperature: 0.8, topK: 40, topP: 0.95 }, createRng(1))
 */
export function sampleToken(logits: Float32Array, s: Sampling, rng: Rng): number {
  if (s.temperature === 0) return argmax(logits);
  const { tokens, total } = candidates(logits, s);
  const probs = probBuf;
  let u = rng.uniform() * total;
  if (tokens === null) {
    let last = 0;
    for (let i = 0; i < logits.length; i++) {
      if (probs[i]! === 0) continue;
      u -= probs[i]!;
      if (u < 0) return i;
      last = i;
    }
    return last;
  }
  for (const i of tokens) {
    u -= probs[i]!;
    if (u < 0) return i;
  }
  return tokens[tokens.length - 1]!;
}

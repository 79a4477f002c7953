// Choosing the next token from logits [vocab]: greedy (temperature 0), or a draw from softmax(logits / T) after
// top-k (keep the k largest) and top-p (keep the smallest set of most likely tokens whose probability reaches p),
// with a seeded generator (lora/rng.ts), so a seed gives the same tokens on every platform.

import { ArgumentError } from "../errors.js";
import type { Rng } from "../lora/rng.js";

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
  const t = o.temperature ?? 0;
  const k = o.topK ?? 0;
  const p = o.topP ?? 1;
  const bad = (name: string, v: unknown, want: string) =>
    new ArgumentError("invalid_argument", `${op}: ${name} is ${JSON.stringify(v)}, expected ${want}`, {
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

/**
 * The next token from logits [vocab]. Greedy when temperature is 0; otherwise one uniform draw from `rng`.
 * @example sampleToken(logits, { temperature: 0.8, topK: 40, topP: 0.95 }, createRng(1))
 */
export function sampleToken(logits: Float32Array, s: Sampling, rng: Rng): number {
  if (s.temperature === 0) return argmax(logits);
  // candidates sorted by logit, descending (ties: lower index first), cut to topK
  let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (s.topK > 0 && s.topK < order.length) order = order.slice(0, s.topK);
  const max = logits[order[0]!]!;
  const probs = order.map((i) => Math.exp((logits[i]! - max) / s.temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  if (s.topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < probs.length && cum < s.topP * total) cum += probs[keep++]!;
    order = order.slice(0, keep);
    probs.length = keep;
    total = cum;
  }
  let u = rng.uniform() * total;
  for (let i = 0; i < order.length; i++) {
    u -= probs[i]!;
    if (u < 0) return order[i]!;
  }
  return order[order.length - 1]!;
}

// Next-token sampling from one row of logits (length vocabSize). temperature 0 is greedy (the first largest logit,
// NaN never chosen); otherwise softmax(logits / temperature), cut to the top-k logits (topK > 0) and to the smallest
// set of most likely tokens whose probability reaches topP (nucleus), then one uniform draw from the request's own
// seeded generator. Ties in the cuts are broken by the lower token id so the draw is a function of (logits, seed).

import type { Rng } from "../lora/rng.js";
import type { SamplingParams } from "./request.js";

/** The index of the first largest finite-or-infinite logit (NaN skipped); 0 for an all-NaN row. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  let found = false;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestValue || (!found && v === bestValue)) {
      best = i;
      bestValue = v;
      found = true;
    }
  }
  return best;
}

/** Token ids sorted by logit, largest first, ties by id (NaN last). */
function byLogit(logits: Float32Array): Uint32Array {
  const order = new Uint32Array(logits.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  const key = (i: number) => (Number.isNaN(logits[i]!) ? Number.NEGATIVE_INFINITY : logits[i]!);
  return order.sort((a, b) => key(b) - key(a) || a - b);
}

/**
 * Draws the next token id from `logits` with `params`, consuming exactly one `rng.uniform()` unless greedy.
 * @example sampleToken(new Float32Array([0, 5, 1]), { temperature: 0, topP: 1, topK: 0 }, rng) // 1
 */
export function sampleToken(logits: Float32Array, params: SamplingParams, rng: Rng): number {
  if (params.temperature === 0 || params.topK === 1) return argmax(logits);
  const max = logits[argmax(logits)]!;
  const invT = 1 / params.temperature;
  const isCut = params.topK > 0 || params.topP < 1;
  // candidates in the order the draw walks them: by id when nothing is cut, else most likely first
  const order = isCut ? byLogit(logits) : null;
  let count = params.topK > 0 ? Math.min(params.topK, logits.length) : logits.length;
  const weights = new Float64Array(count);
  let total = 0;
  for (let j = 0; j < count; j++) {
    const v = logits[order ? order[j]! : j]!;
    const w = Number.isNaN(v) ? 0 : Math.exp((v - max) * invT);
    weights[j] = w;
    total += w;
  }
  if (params.topP < 1) {
    let kept = 0;
    let j = 0;
    while (j < count && kept < params.topP * total) kept += weights[j++]!;
    count = Math.max(1, j);
    total = kept > 0 ? kept : weights[0]!;
  }
  if (!(total > 0)) return argmax(logits);
  let u = rng.uniform() * total;
  for (let j = 0; j < count; j++) {
    u -= weights[j]!;
    if (u < 0) return order ? order[j]! : j;
  }
  // rounding left u ≥ 0 after the last weight: the last candidate with a non-zero weight
  for (let j = count - 1; j >= 0; j--) if (weights[j]! > 0) return order ? order[j]! : j;
  return argmax(logits);
}

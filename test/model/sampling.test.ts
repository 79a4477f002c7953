// Sampling without sorting the vocabulary: the candidates (top-k heap, top-p thresholds, float64 sort keys) against
// the plain definition — every token sorted by logit (descending, lower index first), cut to top-k, then to the
// shortest prefix whose probability reaches top-p — and top-k draws against that definition's draws, seed for seed.

import { describe, expect, it } from "vitest";
import { createRng, type Rng } from "../../src/lora/rng.js";
import { candidates, readSampling, type Sampling, sampleToken } from "../../src/model/sampling.js";

// The definition, sorting every token (the implementation before this one).
function reference(logits: Float32Array, s: Sampling): { order: number[]; probs: number[]; total: number } {
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
  return { order, probs, total };
}

function referenceDraw(logits: Float32Array, s: Sampling, rng: Rng): number {
  const { order, probs, total } = reference(logits, s);
  let u = rng.uniform() * total;
  for (let i = 0; i < order.length; i++) {
    u -= probs[i]!;
    if (u < 0) return order[i]!;
  }
  return order[order.length - 1]!;
}

// logits: normal-ish (sum of uniforms)·scale, or small integers (many ties), with signed zeros mixed in
function logitsOf(n: number, seed: number, kind: "spread" | "ties"): Float32Array {
  const rng = createRng(seed);
  const l = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (kind === "ties") l[i] = Math.floor(rng.uniform() * 7) - 3;
    else l[i] = (rng.uniform() + rng.uniform() + rng.uniform() - 1.5) * 6;
    if (i % 11 === 5) l[i] = i % 2 ? -0 : 0;
  }
  return l;
}

describe("sampling candidates", () => {
  it("equal the sorted definition's: sizes 1 to 50k, ties, ±0, every kind of cut", () => {
    let checked = 0;
    for (const n of [1, 2, 5, 17, 1000, 50257]) {
      for (const kind of ["spread", "ties"] as const) {
        const logits = logitsOf(n, n * 3 + (kind === "ties" ? 1 : 0), kind);
        for (const temperature of [0.3, 1, 2.5]) {
          for (const topK of [0, 1, 2, 40, n - 1, n, n + 3]) {
            for (const topP of [1, 0.95, 0.5, 0.1]) {
              if (n > 1000 && topK !== 0 && topK !== 40) continue;
              const s = readSampling("t", { temperature, topK: Math.max(0, topK), topP });
              const got = candidates(logits, s).tokens;
              const want = reference(logits, s).order;
              if (got === null) {
                // no cut: every token is a candidate
                expect(want.length).toBe(n);
                expect(s.topP === 1 && (s.topK === 0 || s.topK >= n)).toBe(true);
              } else expect(Array.from(got)).toEqual(want);
              checked++;
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(400);
  });

  it("top-p reaching into the far tail lowers its threshold down to every token", () => {
    // one likely token and 60000 at e^-30 (below every threshold but 0): p = 1 − 10^-12 needs most of the tail
    const n = 60001;
    const logits = new Float32Array(n).fill(-30);
    logits[123] = 0;
    for (const topP of [0.5, 1 - 1e-12]) {
      const s = readSampling("t", { temperature: 1, topP });
      const got = candidates(logits, s).tokens!;
      expect(Array.from(got)).toEqual(reference(logits, s).order);
    }
    expect(candidates(logits, readSampling("t", { temperature: 1, topP: 0.5 })).tokens!.length).toBe(1);
  });

  it("vocabularies beyond the float64 sort keys use the comparator, with the same result", () => {
    const n = 2 ** 21 + 3;
    const logits = new Float32Array(n).fill(-40);
    for (const i of [0, 5, n - 1, n - 2, 2 ** 21, 77777]) logits[i] = (i % 5) - 1;
    logits[n - 2] = logits[5]!; // a tie across the key limit
    const s = readSampling("t", { temperature: 1, topP: 0.999 });
    const got = Array.from(candidates(logits, s).tokens!);
    const want = Array.from(logits.keys())
      .filter((i) => logits[i]! > -40)
      .sort((a, b) => logits[b]! - logits[a]! || a - b);
    expect(got).toEqual(want);
  });
});

describe("sampleToken draws", () => {
  it("draws with a cut are the definition's, seed for seed", () => {
    const logits = logitsOf(5000, 9, "spread");
    for (const opts of [
      { temperature: 0.7, topK: 40 },
      { temperature: 1.3, topK: 3, topP: 0.8 },
      { temperature: 1, topP: 0.9 },
    ]) {
      const s = readSampling("t", opts);
      const a = createRng(5);
      const b = createRng(5);
      const got = Array.from({ length: 300 }, () => sampleToken(logits, s, a));
      const want = Array.from({ length: 300 }, () => referenceDraw(logits, s, b));
      expect(got).toEqual(want);
    }
  });

  it("without a cut, draws follow the softmax and never pick an impossible token", () => {
    const logits = Float32Array.from([0.5, -Infinity, 2, 1, -Infinity, -0.5]);
    const s = readSampling("t", { temperature: 0.9 });
    const rng = createRng(11);
    const draws = 30000;
    const counts = new Array(logits.length).fill(0);
    for (let i = 0; i < draws; i++) counts[sampleToken(logits, s, rng)]++;
    const z = [...logits].map((v) => Math.exp((v - 2) / 0.9));
    const total = z.reduce((x, y) => x + y, 0);
    counts.forEach((c, i) => {
      const p = z[i]! / total;
      expect(Math.abs(c - draws * p)).toBeLessThanOrEqual(5 * Math.sqrt(draws * p * (1 - p)) + 1);
    });
    expect(counts[1]).toBe(0);
    expect(counts[4]).toBe(0);
    // a walk that ends with u ≥ 0 (rounding can leave it there; a draw of exactly 1 forces it: 3 − 1 − 1 − 1 = 0) ends
    // on the last possible token, not on an impossible one
    const one: Rng = { uniform: () => 1, normal: () => 0, nextU32: () => 0 };
    expect(sampleToken(Float32Array.from([1, 1, 1, -Infinity]), s, one)).toBe(2);
  });
});

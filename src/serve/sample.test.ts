import { describe, expect, it } from "vitest";
import { createRng } from "../lora/rng.js";
import { argmax, sampleToken } from "./sample.js";

const GREEDY = { temperature: 0, topP: 1, topK: 0 };
const f32 = (v: number[]) => new Float32Array(v);

// Draws `n` tokens and returns the frequency of each id.
function frequencies(logits: number[], params: typeof GREEDY, n: number, seed = 7): number[] {
  const rng = createRng(seed);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[sampleToken(f32(logits), params, rng)]++;
  return counts.map((c) => c / n);
}

// |f − p| within 5 standard deviations of a binomial proportion
function expectProportion(f: number, p: number, n: number): void {
  expect(Math.abs(f - p)).toBeLessThanOrEqual(5 * Math.sqrt((p * (1 - p)) / n) + 1e-12);
}

describe("argmax", () => {
  it("returns the first largest value, skips NaN, and 0 for a row of NaN or -Infinity", () => {
    expect(argmax(f32([1, 3, 2, 3]))).toBe(1);
    expect(argmax(f32([Number.NaN, -5, Number.NaN, -1]))).toBe(3);
    expect(argmax(f32([Number.NaN, Number.NaN]))).toBe(0);
    expect(argmax(f32([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]))).toBe(0);
    expect(argmax(f32([-1, Number.POSITIVE_INFINITY, 2]))).toBe(1);
  });
});

describe("sampleToken", () => {
  it("is greedy at temperature 0 and with top_k 1, without drawing", () => {
    const rng = createRng(1);
    expect(sampleToken(f32([0.5, 2, 1]), GREEDY, rng)).toBe(1);
    expect(sampleToken(f32([0.5, 2, 1]), { temperature: 1.5, topP: 1, topK: 1 }, rng)).toBe(1);
    expect(rng.uniform()).toBe(createRng(1).uniform());
  });

  it("draws from softmax(logits / T): probabilities 1/7, 2/7, 4/7 at T = 1 and ∝ p² at T = 0.5", () => {
    const n = 20000;
    const logits = [0, Math.log(2), Math.log(4)];
    const at1 = frequencies(logits, { temperature: 1, topP: 1, topK: 0 }, n);
    for (const [i, p] of [1 / 7, 2 / 7, 4 / 7].entries()) expectProportion(at1[i]!, p, n);
    const atHalf = frequencies(logits, { temperature: 0.5, topP: 1, topK: 0 }, n);
    for (const [i, p] of [1 / 21, 4 / 21, 16 / 21].entries()) expectProportion(atHalf[i]!, p, n);
  });

  it("top_p keeps the smallest most-likely set reaching p; top_k keeps the k largest", () => {
    const n = 5000;
    const logits = [Math.log(0.2), Math.log(0.5), Math.log(0.3)];
    const nucleus = frequencies(logits, { temperature: 1, topP: 0.6, topK: 0 }, n);
    expect(nucleus[0]).toBe(0);
    expectProportion(nucleus[1]!, 0.5 / 0.8, n);
    expect(frequencies(logits, { temperature: 1, topP: 0.5, topK: 0 }, n)).toEqual([0, 1, 0]);
    const topK = frequencies(logits, { temperature: 1, topP: 1, topK: 2 }, n);
    expect(topK[0]).toBe(0);
    expectProportion(topK[2]!, 0.3 / 0.8, n);
  });

  it("never picks a NaN or -Infinity logit, and a seed gives the same draws", () => {
    const logits = [Number.NaN, 1, Number.NEGATIVE_INFINITY, 1];
    const f = frequencies(logits, { temperature: 1, topP: 0.9, topK: 0 }, 2000);
    expect(f[0]! + f[2]!).toBe(0);
    const draw = (seed: number) => {
      const rng = createRng(seed);
      return Array.from({ length: 50 }, () =>
        sampleToken(f32([1, 2, 3, 2, 1]), { temperature: 1, topP: 1, topK: 0 }, rng),
      );
    };
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)).not.toEqual(draw(4));
  });

  it("consumes exactly one uniform per non-greedy draw", () => {
    const rng = createRng(9);
    sampleToken(f32([1, 2, 3]), { temperature: 0.7, topP: 0.9, topK: 2 }, rng);
    const ref = createRng(9);
    ref.uniform();
    expect(rng.uniform()).toBe(ref.uniform());
  });
});

import { describe, expect, it } from "vitest";
import { createRng } from "../lora/rng.js";
import { deriveSeed, permutation } from "./shuffle.js";

describe("shuffle", () => {
  it("deriveSeed is a function of seed and purpose", () => {
    expect(deriveSeed(1, "init")).toBe(deriveSeed(1, "init"));
    expect(deriveSeed(1, "init")).not.toBe(deriveSeed(1, "data"));
    expect(deriveSeed(1, "init")).not.toBe(deriveSeed(2, "init"));
  });

  it("permutation is a permutation, reproducible per seed", () => {
    const p = permutation(100, createRng(3));
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(permutation(100, createRng(3)))).toEqual(Array.from(p));
    expect(Array.from(permutation(100, createRng(4)))).not.toEqual(Array.from(p));
    expect(Array.from(permutation(0, createRng(3)))).toEqual([]);
  });

  it("every position is equally likely (first element over many shuffles)", () => {
    const rng = createRng(5);
    const counts = new Array(4).fill(0);
    for (let i = 0; i < 4000; i++) counts[permutation(4, rng)[0]!]++;
    // expected 1000 each; 5 standard deviations ≈ 5·√(4000·¼·¾) ≈ 137
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(137);
  });
});

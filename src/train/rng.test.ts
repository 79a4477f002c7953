import { describe, expect, it } from "vitest";
import { createRng, deriveSeed, permutation } from "./rng.js";

describe("rng", () => {
  it("is reproducible per seed and differs between seeds", () => {
    const a = createRng(7);
    const b = createRng(7);
    const c = createRng(8);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
    expect(deriveSeed(1, "init")).toBe(deriveSeed(1, "init"));
    expect(deriveSeed(1, "init")).not.toBe(deriveSeed(1, "data"));
    expect(deriveSeed(1, "init")).not.toBe(deriveSeed(2, "init"));
  });

  it("uniforms in [0, 1) with mean ≈ 1/2; normals with mean ≈ 0 and variance ≈ 1", () => {
    const rng = createRng(1);
    const n = 20000;
    let su = 0;
    let sn = 0;
    let sn2 = 0;
    let inRange = true;
    for (let i = 0; i < n; i++) {
      const u = rng.next();
      inRange &&= u >= 0 && u < 1;
      su += u;
      const z = rng.normal();
      sn += z;
      sn2 += z * z;
    }
    expect(inRange).toBe(true);
    // 5 standard errors: 1/√(12n) ≈ 0.002 for the uniform mean, 1/√n ≈ 0.007 for the normal mean, √(2/n) ≈ 0.01
    expect(Math.abs(su / n - 0.5)).toBeLessThan(0.011);
    expect(Math.abs(sn / n)).toBeLessThan(0.036);
    expect(Math.abs(sn2 / n - 1)).toBeLessThan(0.05);
  });

  it("permutation is a permutation and int stays in range", () => {
    const rng = createRng(3);
    const p = permutation(100, rng);
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const ks = Array.from({ length: 1000 }, () => rng.int(7));
    expect(ks.every((k) => Number.isInteger(k) && k >= 0 && k < 7)).toBe(true);
    expect(new Set(ks).size).toBe(7);
    expect(Array.from(permutation(0, rng))).toEqual([]);
  });
});

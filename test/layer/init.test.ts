// Seeded initialisation: kaiming-uniform down (range, mean, variance), gaussian std 1/r, up exactly 0,
// reproducible from the seed, and the PRNG's own moments.
import { describe, expect, it } from "vitest";
import { createRng, gaussian, kaimingUniform, LoraLinear } from "../../src/index.js";
import { matrix } from "./cases.js";

function moments(a: ArrayLike<number>): { mean: number; variance: number; min: number; max: number } {
  let s = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < a.length; i++) {
    s += a[i]!;
    min = Math.min(min, a[i]!);
    max = Math.max(max, a[i]!);
  }
  const mean = s / a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i]! - mean) ** 2;
  return { mean, variance: v / (a.length - 1), min, max };
}

describe("initialisation", () => {
  it("default: down ~ U(±1/√dIn) with mean ≈ 0 and variance ≈ 1/(3·dIn); up exactly 0", () => {
    const dIn = 256;
    const layer = new LoraLinear({ weight: matrix("float32", dIn, 64, 1) });
    layer.addAdapter("a", { r: 64, alpha: 16 });
    const { down, up } = layer.adapter("a");
    const bound = 1 / Math.sqrt(dIn);
    const m = moments(down.data); // 16384 samples
    expect(m.min).toBeGreaterThanOrEqual(-bound);
    expect(m.max).toBeLessThanOrEqual(bound);
    expect(m.min).toBeLessThan(-0.99 * bound); // the range is used
    expect(m.max).toBeGreaterThan(0.99 * bound);
    const sd = Math.sqrt(1 / (3 * dIn));
    expect(Math.abs(m.mean)).toBeLessThan((4 * sd) / Math.sqrt(down.data.length)); // 4 standard errors
    expect(m.variance / (1 / (3 * dIn))).toBeGreaterThan(0.95);
    expect(m.variance / (1 / (3 * dIn))).toBeLessThan(1.05);
    expect(up.data.every((v) => Object.is(v, 0))).toBe(true);
  });

  it("gaussian: down ~ N(0, 1/r²), up exactly 0", () => {
    const layer = new LoraLinear({ weight: matrix("float64", 512, 16, 1) });
    layer.addAdapter("g", { r: 8, init: "gaussian" });
    const { down, up } = layer.adapter("g");
    const m = moments(down.data); // 4096 samples
    expect(Math.abs(m.mean)).toBeLessThan((4 * (1 / 8)) / Math.sqrt(down.data.length));
    expect(Math.sqrt(m.variance) / (1 / 8)).toBeGreaterThan(0.95);
    expect(Math.sqrt(m.variance) / (1 / 8)).toBeLessThan(1.05);
    expect(up.data.every((v) => v === 0)).toBe(true);
  });

  it('"none": both matrices random, so the adapter changes the output', () => {
    const layer = new LoraLinear({ weight: matrix("float64", 8, 4, 1) });
    layer.addAdapter("n", { r: 2, init: "none" });
    const { up } = layer.adapter("n");
    expect(up.data.some((v) => v !== 0)).toBe(true);
    expect(Math.max(...up.data.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(2));
  });

  it("is reproducible from the seed; default seeds differ by adapter name", () => {
    const make = (seed?: number) => {
      const l = new LoraLinear({ weight: matrix("float64", 8, 4, 1), ...(seed === undefined ? {} : { seed }) });
      l.addAdapter("a", { r: 3 });
      l.addAdapter("b", { r: 3 });
      l.addAdapter("c", { r: 3, seed: 42 });
      return l;
    };
    const [l1, l2, l3] = [make(), make(), make(7)];
    const d = (l: LoraLinear, n: string) => Array.from(l.adapter(n).down.data);
    expect(d(l1, "a")).toEqual(d(l2, "a"));
    expect(d(l1, "a")).not.toEqual(d(l1, "b"));
    expect(d(l1, "a")).not.toEqual(d(l3, "a"));
    expect(d(l1, "c")).toEqual(d(l3, "c"));
  });

  it("the op-level initialisers fill in place and return their argument", () => {
    const a = new Float64Array(10);
    expect(kaimingUniform(a, 4, createRng(1))).toBe(a);
    expect(a.every((v) => Math.abs(v) <= 0.5)).toBe(true);
    const b = new Float32Array(10);
    expect(gaussian(b, 2, createRng(1))).toBe(b);
  });
});

describe("createRng", () => {
  it("uniform on [0, 1) with mean 1/2 and variance 1/12; normal with mean 0 and variance 1; deterministic", () => {
    const rng = createRng(2026);
    const u = Float64Array.from({ length: 20000 }, () => rng.uniform());
    const mu = moments(u);
    expect(mu.min).toBeGreaterThanOrEqual(0);
    expect(mu.max).toBeLessThan(1);
    expect(Math.abs(mu.mean - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(mu.variance - 1 / 12)).toBeLessThan(0.003);
    const z = Float64Array.from({ length: 20000 }, () => rng.normal());
    const mz = moments(z);
    expect(Math.abs(mz.mean)).toBeLessThan(0.03);
    expect(Math.abs(mz.variance - 1)).toBeLessThan(0.04);
    const again = createRng(2026);
    expect(again.uniform()).toBe(u[0]);
    expect(createRng(2027).uniform()).not.toBe(u[0]);
  });
});

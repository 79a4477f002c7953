import { describe, expect, it } from "vitest";
import { loraForward, lowRankForward } from "./forward.js";

// The mission's reference examples: float64, exact.
const MISSION = [
  {
    x: [[1, 2]],
    W: [
      [1, 0],
      [0, 1],
    ],
    B: [[1], [1]],
    A: [[0.5, 0.5]],
    alpha: 2,
    h: [[4, 5]],
  },
  {
    x: [
      [1, 0],
      [0, 1],
    ],
    W: [
      [2, 1],
      [1, 2],
    ],
    B: [
      [0.5, 0.5],
      [0.5, 0.5],
    ],
    A: [
      [1, 0],
      [0, 1],
    ],
    alpha: 1,
    h: [
      [2.25, 1.25],
      [1.25, 2.25],
    ],
  },
  { x: [[2]], W: [[3]], B: [[1]], A: [[1]], alpha: 4, h: [[14]] },
];

describe("loraForward: mission examples", () => {
  it.each(MISSION)("example $h is exact", ({ x, W, B, A, alpha, h }) => {
    expect(loraForward(x, W, B, A, alpha)).toEqual(h);
  });

  it("x=I3, W=ones(3x2), B=[[1],[2],[3]], A=[[0.1,0.2]], alpha=1 to 1e-12", () => {
    const I3 = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ];
    const ones = [
      [1, 1],
      [1, 1],
      [1, 1],
    ];
    const h = loraForward(I3, ones, [[1], [2], [3]], [[0.1, 0.2]], 1);
    const want = [
      [1.1, 1.2],
      [1.2, 1.4],
      [1.3, 1.6],
    ];
    expect(h).toHaveLength(3);
    const err = Math.max(...h.flatMap((row, i) => row.map((v, j) => Math.abs(v - want[i]![j]!))));
    expect(err).toBeLessThanOrEqual(1e-12);
  });

  it("PEFT T3: standard scaling alpha/r and rsLoRA alpha/sqrt(r)", () => {
    const I2 = [
      [1, 0],
      [0, 1],
    ];
    expect(loraForward([[1, 2]], I2, I2, I2, 2)).toEqual([[2, 4]]);
    const rs = loraForward([[1, 2]], I2, I2, I2, 2, { scaling: "rslora" })[0]!;
    expect(Math.abs(rs[0]! - (1 + Math.SQRT2))).toBeLessThan(1e-12);
    expect(Math.abs(rs[1]! - (2 + 2 * Math.SQRT2))).toBeLessThan(1e-12);
  });

  it("an explicit scale overrides alpha and the rule", () => {
    expect(
      loraForward(
        [[1, 2]],
        [
          [1, 0],
          [0, 1],
        ],
        [[1], [1]],
        [[0.5, 0.5]],
        2,
        { scale: 1 },
      ),
    ).toEqual([[2.5, 3.5]]);
  });

  it("x with zero rows returns zero rows", () => {
    expect(loraForward([], [[1, 2]], [[1]], [[1, 1]], 1)).toEqual([]);
    const h = loraForward(
      { data: new Float32Array(0), rows: 0, cols: 2 },
      { data: new Float32Array(4), rows: 2, cols: 2 },
      { data: new Float32Array(2), rows: 2, cols: 1 },
      { data: new Float32Array(2), rows: 1, cols: 2 },
      1,
    );
    expect(h.rows).toBe(0);
    expect(h.data).toBeInstanceOf(Float32Array);
  });
});

describe("loraForward: typed forms", () => {
  const f32 = (rows: number, cols: number, v: number[]) => ({ data: Float32Array.from(v), rows, cols });
  const f64 = (rows: number, cols: number, v: number[]) => ({ data: Float64Array.from(v), rows, cols });

  it("float32 views in give a float32 view out", () => {
    const h = loraForward(f32(1, 2, [1, 2]), f32(2, 2, [1, 0, 0, 1]), f32(2, 1, [1, 1]), f32(1, 2, [0.5, 0.5]), 2);
    expect(h.data).toBeInstanceOf(Float32Array);
    expect([h.rows, h.cols]).toEqual([1, 2]);
    expect(Array.from(h.data)).toEqual([4, 5]);
  });

  it("float64 views in give float64 out", () => {
    const h = loraForward(f64(1, 1, [2]), f64(1, 1, [3]), f64(1, 1, [1]), f64(1, 1, [1]), 4);
    expect(h.data).toBeInstanceOf(Float64Array);
    expect(Array.from(h.data)).toEqual([14]);
  });

  it("tensors with leading dims [batch, tokens, dIn] keep them", () => {
    const x = { data: Float32Array.from([1, 2, 2, 1, 0, 1]), dims: [1, 3, 2] };
    const W = { data: Float32Array.from([1, 0, 0, 1]), dims: [2, 2] };
    const B = { data: Float32Array.from([1, 1]), dims: [2, 1] };
    const A = { data: Float32Array.from([0.5, 0.5]), dims: [1, 2] };
    const h = loraForward(x, W, B, A, 2);
    expect(h.dims).toEqual([1, 3, 2]);
    expect(Array.from(h.data)).toEqual([4, 5, 5, 4, 1, 2]);
  });

  it("writes into options.out without allocating the result", () => {
    const out = new Float32Array(2);
    const h = loraForward(f32(1, 2, [1, 2]), f32(2, 2, [1, 0, 0, 1]), f32(2, 1, [1, 1]), f32(1, 2, [0.5, 0.5]), 2, {
      out,
    });
    expect(h.data).toBe(out);
    expect(Array.from(out)).toEqual([4, 5]);
  });

  it("does not modify its inputs", () => {
    const x = f32(1, 2, [1, 2]);
    const W = f32(2, 2, [1, 0, 0, 1]);
    loraForward(x, W, f32(2, 1, [1, 1]), f32(1, 2, [0.5, 0.5]), 2);
    expect(Array.from(x.data)).toEqual([1, 2]);
    expect(Array.from(W.data)).toEqual([1, 0, 0, 1]);
  });

  it("lowRankForward names the matrices by role and matches loraForward", () => {
    const x = f64(1, 2, [1, 2]);
    const W = f64(2, 2, [1, 0, 0, 1]);
    const h = lowRankForward(x, W, { down: f64(2, 1, [1, 1]), up: f64(1, 2, [0.5, 0.5]), scaling: 2 });
    expect(Array.from(h.data)).toEqual([4, 5]);
  });
});

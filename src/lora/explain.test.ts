import { describe, expect, it } from "vitest";
import { explainLoraForward } from "./explain.js";
import { formatMatrix, formatNumber, renderExplanation } from "./explain-text.js";
import { loraForward } from "./forward.js";

describe("explainLoraForward", () => {
  it("returns every intermediate of the worked example x=[[2]], W=[[3]], B=[[1]], A=[[1]], alpha=4", () => {
    const e = explainLoraForward([[2]], [[3]], [[1]], [[1]], 4);
    expect(e.frozen).toEqual([[6]]);
    expect(e.lowRank).toEqual({ xB: [[2]], xBA: [[2]] });
    expect(e.rank.r).toBe(1);
    expect(e.rank.source).toBe("columns of B [1, 1] = rows of A [1, 1]");
    expect(e.scaling).toEqual({ alpha: 4, r: 1, rule: "standard", formula: "alpha / r", value: 4, overridden: false });
    expect(e.combined).toEqual({ scaledLowRank: [[8]], output: [[14]] });
  });

  it("its output is loraForward's, bit for bit", () => {
    const args = [
      [
        [1, 0.3],
        [0.7, 1],
      ],
      [
        [2, 1.1],
        [1, 2],
      ],
      [
        [0.5, 0.25],
        [0.125, 0.5],
      ],
      [
        [1, 0.1],
        [0.3, 1],
      ],
    ] as const;
    expect(explainLoraForward(...args, 0.7).combined.output).toEqual(loraForward(...args, 0.7));
  });

  it("renders the steps in the learner's order with the numbers", () => {
    const text = renderExplanation(explainLoraForward([[2]], [[3]], [[1]], [[1]], 4));
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toEqual([
      "LoRA forward: h = x @ W + s * (x @ B) @ A   (n = 1, dIn = 1, dOut = 1, r = 1)",
      "1. Frozen path: the pretrained weight W [dIn, dOut], never trained",
      "   x @ W = [[2.0]] @ [[3.0]] = [[6.0]]",
      "2. Low-rank path: B [dIn, r] projects down to r dims, A [r, dOut] projects back up",
      "   x @ B = [[2.0]] @ [[1.0]] = [[2.0]]",
      "   (x @ B) @ A = [[2.0]] @ [[1.0]] = [[2.0]]",
      "3. Rank: inferred from the shapes, never passed",
      "   r = 1 (columns of B [1, 1] = rows of A [1, 1])",
      "4. Scaling",
      "   s = alpha / r = 4.0 / 1 = 4.0",
      "5. Combine: frozen path + scaled low-rank path",
      "   h = x @ W + s * (x @ B) @ A = [[6.0]] + 4.0 * [[2.0]] = [[14.0]]",
    ]);
  });

  it("explains rsLoRA and an explicit scale", () => {
    const I2 = [
      [1, 0],
      [0, 1],
    ];
    expect(renderExplanation(explainLoraForward([[1, 2]], I2, I2, I2, 2, { scaling: "rslora" }))).toContain(
      "s = alpha / sqrt(r) = 2.0 / sqrt(2) = 1.4142",
    );
    expect(renderExplanation(explainLoraForward([[1, 2]], I2, I2, I2, 2, { scale: 3 }))).toContain(
      "s = 3.0 (given explicitly, instead of alpha / r = 2.0 / 2 = 1.0)",
    );
  });

  it("abbreviates large matrices to their corners", () => {
    const big = Array.from({ length: 10 }, (_, i) => Array.from({ length: 10 }, (_, j) => i * 10 + j));
    expect(formatMatrix(big)).toBe(
      "[[0.0, 1.0, 2.0, ..., 8.0, 9.0], [10.0, 11.0, 12.0, ..., 18.0, 19.0], [20.0, 21.0, 22.0, ..., 28.0, 29.0], ..., [80.0, 81.0, 82.0, ..., 88.0, 89.0], [90.0, 91.0, 92.0, ..., 98.0, 99.0]]",
    );
  });

  it("formats numbers like the worked example", () => {
    expect([
      formatNumber(6),
      formatNumber(2.25),
      formatNumber(0.1 + 0.2),
      formatNumber(-0),
      formatNumber(1 / 3, 2),
    ]).toEqual(["6.0", "2.25", "0.3", "0.0", "0.33"]);
  });
});

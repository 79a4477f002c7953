// Merge and unmerge over the CASES table, the float32 drift bound over 1000 cycles, exact restore, safe merge,
// LIFO order, DoRA merging, mergeAndUnload and the standalone merge ops.
import { describe, expect, it } from "vitest";
import { deltaWeight, LoraLinear, type Matrix, mergeAdapter, safeMerge, unmergeAdapter } from "../../src/index.js";
import { expectClose, U_F32 } from "../helpers/close.js";
import { CASES, type Case, makeInput, makeLayer, matrix, reference } from "./cases.js";

describe.each(CASES)("merge: $name", (c: Case) => {
  it("merged output equals the unmerged output (≤ PEFT 1e-4) and is not added twice", () => {
    const layer = makeLayer(c);
    const x = makeInput(c);
    const { h, bound } = reference(layer, x, layer.activeAdapters);
    const unmerged = layer.forward(x).data.slice();
    const report = layer.merge();
    expect(report.adapters).toEqual(c.adapters.map((a) => a.name));
    expect(layer.isMerged).toBe(true);
    expect(layer.mergedAdapters).toEqual(c.adapters.map((a) => a.name));
    const merged = layer.forward(x).data;
    expectClose(merged, unmerged, { atol: 1e-4, rtol: 1e-4 });
    // merging rounds ΔW into W once more: one extra u·|x|·|ΔW|-sized term per element, inside the reference bound ×2
    expectClose(merged, h, { bound: bound.map((b) => 2 * b + (c.dtype === "float32" ? 1e-6 : 1e-13)) });
  });

  it("unmerge restores the weight (within 2u·(|W| + |ΔW|) per cycle) and the base output (≤ PEFT 1e-3)", () => {
    const layer = makeLayer(c);
    const x = makeInput(c);
    const w0 = layer.weight.data.slice();
    layer.setActive([]);
    const base = layer.forward(x).data.slice();
    layer.setActive(c.adapters.map((a) => a.name));
    layer.merge();
    const wMerged = layer.weight.data.slice();
    const report = layer.unmerge();
    expect(report.adapters).toEqual(c.adapters.map((a) => a.name).reverse());
    expect(layer.isMerged).toBe(false);
    const u = c.dtype === "float32" ? U_F32 : 2 ** -53;
    const dora = c.adapters.some((a) => a.useDora);
    // DoRA divides by m/‖V‖ and multiplies back, a few more roundings: 8u instead of 2u
    const k = dora ? 8 : 2;
    expectClose(layer.weight.data, w0, { bound: w0.map((v, i) => k * u * (Math.abs(v) + Math.abs(wMerged[i]!) * 2)) });
    layer.setActive([]);
    expectClose(layer.forward(x).data, base, { atol: 1e-3, rtol: 1e-3 });
  });

  it("mergeAndUnload returns a plain weight giving the adapted output", () => {
    const layer = makeLayer(c);
    const x = makeInput(c);
    const before = layer.forward(x).data.slice();
    const w = layer.mergeAndUnload();
    expect(layer.adapterNames).toEqual([]);
    expect(layer.isMerged).toBe(false);
    const plain = new LoraLinear({ weight: w, layout: c.layout, ...(layer.bias ? { bias: layer.bias } : {}) });
    expectClose(plain.forward(x).data, before, { atol: 1e-4, rtol: 1e-4 });
  });
});

describe("merge/unmerge drift (float32)", () => {
  it("1000 merge/unmerge cycles stay within the one-cycle bound 2u·(|W| + |ΔW|)", () => {
    const dIn = 48;
    const dOut = 40;
    const W = matrix("float32", dIn, dOut, 3);
    const w0 = W.data.slice();
    const layer = new LoraLinear({ weight: W });
    layer.addAdapter("a", { down: matrix("float32", dIn, 8, 4), up: matrix("float32", 8, dOut, 5), alpha: 16 });
    const dW = deltaWeight(layer.adapter("a").down, layer.adapter("a").up, layer.adapter("a").scaling).data;
    const bound = w0.map((v, i) => 2 * U_F32 * (Math.abs(v) + Math.abs(dW[i]!)));
    let worstAfterFirst = 0;
    let worstLater = 0;
    for (let cycle = 0; cycle < 1000; cycle++) {
      layer.merge();
      layer.unmerge();
      let worst = 0;
      for (let i = 0; i < w0.length; i++) worst = Math.max(worst, Math.abs(W.data[i]! - w0[i]!) / bound[i]!);
      if (cycle === 0) worstAfterFirst = worst;
      else worstLater = Math.max(worstLater, worst);
    }
    expect(worstAfterFirst).toBeLessThanOrEqual(1);
    expect(worstLater).toBeLessThanOrEqual(1); // no growth with the number of cycles
    expectClose(W.data, w0, { bound });
  });

  it("exactUnmerge restores the original weight bit for bit (also with DoRA)", () => {
    const W = matrix("float32", 16, 12, 3);
    const w0 = Array.from(W.data);
    const layer = new LoraLinear({ weight: W, exactUnmerge: true });
    layer.addAdapter("a", { down: matrix("float32", 16, 4, 4), up: matrix("float32", 4, 12, 5), alpha: 8 });
    layer.addAdapter("d", {
      down: matrix("float32", 16, 2, 6),
      up: matrix("float32", 2, 12, 7),
      alpha: 3,
      useDora: true,
    });
    for (let i = 0; i < 10; i++) {
      layer.merge(["a"]);
      layer.merge(["d"]);
      expect(Array.from(W.data)).not.toEqual(w0);
      layer.unmerge();
      expect(Array.from(W.data)).toEqual(w0);
    }
  });
});

describe("merge bookkeeping", () => {
  const setup = (logger?: (m: string) => void) => {
    const W = matrix("float64", 6, 5, 1);
    const layer = new LoraLinear({ weight: W, ...(logger ? { logger } : {}) });
    layer.addAdapter("a", { down: matrix("float64", 6, 2, 2), up: matrix("float64", 2, 5, 3), alpha: 2 });
    layer.addAdapter("b", { down: matrix("float64", 6, 3, 4), up: matrix("float64", 3, 5, 5), alpha: 6 });
    layer.addAdapter("d", {
      down: matrix("float64", 6, 2, 6),
      up: matrix("float64", 2, 5, 7),
      alpha: 2,
      useDora: true,
      magnitude: Float64Array.of(0.5, 1.5, 2, 0.8, 1.1), // g ≠ 1, so DoRA really rescales
    });
    return { W, layer };
  };

  it("merging an already merged adapter is a no-op with a warning (returned and logged, never printed)", () => {
    const logged: string[] = [];
    const { W, layer } = setup((m) => logged.push(m));
    layer.merge(["a"]);
    const once = W.data.slice();
    const r = layer.merge(["a", "b"]);
    expect(r.adapters).toEqual(["b"]);
    expect(r.warnings).toEqual(['LoraLinear.merge: adapter "a" is already merged; skipped']);
    expect(logged).toEqual(r.warnings);
    const r2 = layer.merge(["a", "b"]);
    expect(r2.adapters).toEqual([]);
    expect(r2.warnings).toHaveLength(2);
    expect(layer.mergedAdapters).toEqual(["a", "b"]);
    layer.unmerge();
    layer.merge(["a"]);
    expectClose(W.data, once, { atol: 1e-15, rtol: 1e-15 });
  });

  it("unmerge with nothing merged only warns", () => {
    const { W, layer } = setup();
    const w0 = Array.from(W.data);
    expect(layer.unmerge()).toEqual({
      adapters: [],
      warnings: ["LoraLinear.unmerge: nothing is merged; nothing to do"],
    });
    expect(Array.from(W.data)).toEqual(w0);
  });

  it("unmerge pops last-in first-out (DoRA merged on top of a merged adapter comes back exactly)", () => {
    const { W, layer } = setup();
    const w0 = W.data.slice();
    layer.merge(["a"]);
    layer.merge(["d"]); // d's norm is taken over W + ΔW_a: undoing a first would be wrong
    layer.merge(["b"]);
    expect(layer.unmerge().adapters).toEqual(["b", "d", "a"]);
    expectClose(W.data, w0, { atol: 1e-14, rtol: 1e-14 });
  });

  it("forward while merged equals forward unmerged (merged adapters act first; DoRA rescales what precedes it)", () => {
    const { layer } = setup();
    layer.setActive(["a", "b", "d"]);
    const x = matrix("float64", 4, 6, 9);
    const expected = layer.forward(x).data.slice();
    for (const subset of [["a"], ["b"], ["a", "b"], ["b", "a"], ["a", "b", "d"]]) {
      layer.merge(subset);
      expectClose(layer.forward(x).data, expected, { atol: 1e-12, rtol: 1e-12 });
      layer.unmerge();
    }
  });

  it("safe merge equals the plain merge and rejects NaN and Inf leaving W untouched", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const { W, layer } = setup();
      layer.merge(["a"], { safe: true });
      const afterA = Array.from(W.data);
      layer.unmerge();
      const w0 = Array.from(W.data);
      const info = layer.adapter("b");
      info.up.data[7] = bad; // row 1, col 2 of up → every row of column 2 of ΔW
      const err = (() => {
        try {
          layer.merge(["b"], { safe: true });
        } catch (e) {
          return e as { code: string; message: string };
        }
      })();
      expect(err?.code).toBe("non_finite");
      expect(err?.message).toMatch(
        /^LoraLinear\.merge: merged weight has 6 non-finite values \(first at \[0, 2\]: (NaN|Infinity|-Infinity)\); the base weight was left unchanged/,
      );
      expect(Array.from(W.data)).toEqual(w0);
      expect(layer.isMerged).toBe(false);
      layer.merge(["a"]);
      expectClose(W.data, afterA, { atol: 1e-12 }); // the plain merge agrees with the safe one
      layer.unmerge();
      expectClose(W.data, w0, { atol: 0 });
    }
  });

  it("dryRun: checks the merged weight like safe, then leaves W and the merged state untouched", () => {
    const { W, layer } = setup();
    const w0 = Array.from(W.data);
    expect(layer.merge(["a", "d"], { dryRun: true }).adapters).toEqual(["a", "d"]);
    expect(Array.from(W.data)).toEqual(w0);
    expect(layer.isMerged).toBe(false);
    layer.adapter("b").up.data[7] = Number.POSITIVE_INFINITY;
    expect(() => layer.merge(["b"], { dryRun: true })).toThrow(
      expect.objectContaining({
        code: "non_finite",
        message: expect.stringMatching(/^LoraLinear\.merge: merged weight/),
      }),
    );
    expect(Array.from(W.data)).toEqual(w0);
  });

  it("setScaling: the term's factor changes as if added with that scale; refused non-finite or while merged", () => {
    const { layer } = setup();
    const x = matrix("float64", 4, 6, 9);
    layer.setActive(["b"]);
    const before = layer.forward(x).data.slice();
    layer.setScaling("b", 0.25);
    const fresh = new LoraLinear({ weight: matrix("float64", 6, 5, 1) });
    fresh.addAdapter("b", { down: matrix("float64", 6, 3, 4), up: matrix("float64", 3, 5, 5), scale: 0.25 });
    expect(Array.from(layer.forward(x).data)).toEqual(Array.from(fresh.forward(x).data));
    expect(layer.adapter("b").scaling).toBe(0.25);
    expect(() => layer.setScaling("b", Number.NaN)).toThrow(
      expect.objectContaining({
        code: "invalid_argument",
        message: "LoraLinear.setScaling: scaling must be a finite number, got NaN",
      }),
    );
    layer.setScaling("b", 2); // alpha 6 / r 3: the file's own
    expect(Array.from(layer.forward(x).data)).toEqual(Array.from(before));
    layer.merge(["b"]);
    expect(() => layer.setScaling("b", 1)).toThrow(
      expect.objectContaining({ code: "adapter_state", message: expect.stringMatching(/"b" is merged/) }),
    );
    expect(() => layer.setScaling("zz", 1)).toThrow(expect.objectContaining({ code: "unknown_adapter" }));
  });

  it("merge() with no names merges the active adapters", () => {
    const { layer } = setup();
    expect(layer.activeAdapters).toEqual(["a"]);
    expect(layer.merge().adapters).toEqual(["a"]);
  });
});

describe("merge ops", () => {
  const down = matrix("float64", 4, 2, 1);
  const up = matrix("float64", 2, 3, 2);

  it("mergeAdapter / unmergeAdapter / safeMerge in both layouts", () => {
    for (const layout of ["in_out", "out_in"] as const) {
      const W: Matrix = layout === "in_out" ? matrix("float64", 4, 3, 3) : matrix("float64", 3, 4, 3);
      const w0 = W.data.slice();
      const dW = deltaWeight(down, up, 1.5, { layout });
      expect([dW.rows, dW.cols]).toEqual([W.rows, W.cols]);
      expect(mergeAdapter(W, { down, up, scaling: 1.5 }, { layout })).toBe(W);
      expectClose(
        W.data,
        w0.map((v, i) => v + dW.data[i]!),
        { atol: 0 },
      );
      unmergeAdapter(W, { down, up, scaling: 1.5 }, { layout });
      expectClose(W.data, w0, { atol: 1e-15 });
      safeMerge(W, { down, up, scaling: 1.5 }, { layout });
      expectClose(
        W.data,
        w0.map((v, i) => v + dW.data[i]!),
        { atol: 0 },
      );
    }
  });

  it("deltaWeight in out_in layout is the transpose of in_out", () => {
    const a = deltaWeight(down, up, 2).data;
    const b = deltaWeight(down, up, 2, { layout: "out_in" }).data;
    for (let i = 0; i < 4; i++) for (let j = 0; j < 3; j++) expect(b[j * 4 + i]).toBeCloseTo(a[i * 3 + j]!, 14);
  });

  it("safeMerge rejects a non-finite result naming the count and first index, W unchanged", () => {
    const W = matrix("float64", 4, 3, 3);
    W.data[7] = Number.POSITIVE_INFINITY; // [2, 1]
    W.data[11] = Number.NaN; // [3, 2]
    const w0 = Array.from(W.data);
    let err: { code?: string } = {};
    expect(() => {
      try {
        safeMerge(W, { down, up, scaling: 1 });
      } catch (e) {
        err = e as { code: string };
        throw e;
      }
    }).toThrow(
      /^safeMerge: merged weight has 2 non-finite values \(first at \[2, 1\]: Infinity\); W was left unchanged/,
    );
    expect(err.code).toBe("non_finite");
    expect(Array.from(W.data)).toEqual(w0);
  });
});

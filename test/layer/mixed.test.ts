// Mixed-adapter batches: each row with its own adapter equals running that row alone with only that adapter
// active; rows sharing an adapter are computed as one gathered block.
import { describe, expect, it, vi } from "vitest";
import { LoraLinear } from "../../src/index.js";
import { LORA_VARIANT } from "../../src/lora/variants.js";
import { expectClose } from "../helpers/close.js";
import { type Case, makeInput, makeLayer, matrix, PLAIN_CASES, reference } from "./cases.js";

function idsFor(c: Case, n: number): (string | null)[] {
  const pool = [null, ...c.adapters.map((a) => a.name)];
  return Array.from({ length: n }, (_, i) => pool[(i * 7 + 1) % pool.length]!);
}

describe.each(PLAIN_CASES)("mixed batch: $name", (c: Case) => {
  it("equals running each row alone with its adapter (within the bound, ≤ PEFT 1e-4)", () => {
    const layer = makeLayer(c);
    const x = makeInput(c);
    const ids = idsFor(c, c.n);
    const mixed = layer.forward(x, { adapterIds: ids });
    expect([mixed.rows, mixed.cols]).toEqual([c.n, c.dOut]);
    for (let i = 0; i < c.n; i++) {
      const row = { data: x.data.slice(i * c.dIn, (i + 1) * c.dIn), rows: 1, cols: c.dIn };
      const id = ids[i]!;
      layer.setActive(id === null ? [] : [id]);
      const alone = layer.forward(row).data;
      const { h, bound } = reference(layer, row, layer.activeAdapters);
      const got = mixed.data.subarray(i * c.dOut, (i + 1) * c.dOut);
      expectClose(got, h, { bound });
      expectClose(got, alone, { bound: bound.map((b) => 2 * b) });
    }
  });
});

describe("mixed batch grouping", () => {
  it("computes each distinct adapter once over its gathered rows, null rows get exactly the base output", () => {
    const layer = new LoraLinear({ weight: matrix("float32", 6, 5, 1), bias: Float32Array.of(1, 2, 3, 4, 5) });
    for (const [k, name] of ["a", "b", "c"].entries()) {
      layer.addAdapter(name, {
        down: matrix("float32", 6, 2 + k, 10 + k),
        up: matrix("float32", 2 + k, 5, 20 + k),
        alpha: 3,
      });
    }
    layer.setActive(["a"]); // ignored by a mixed batch: the ids choose
    const x = matrix("float32", 9, 6, 3);
    const ids = ["b", null, "a", "b", "c", null, "b", "a", "c"];
    const spy = vi.spyOn(LORA_VARIANT, "forward");
    const h = layer.forward(x, { adapterIds: ids });
    expect(spy.mock.calls.map((call) => call[3])).toEqual([3, 2, 2]); // b: 3 rows, a: 2, c: 2 (first-seen order)
    spy.mockRestore();
    layer.setActive([]);
    const base = layer.forward(x).data;
    for (const i of [1, 5])
      expect(Array.from(h.data.subarray(i * 5, i * 5 + 5))).toEqual(Array.from(base.subarray(i * 5, i * 5 + 5)));
  });

  it("a group of consecutive rows (computed on views of x and h) gets the bits it gets gathered", () => {
    const layer = new LoraLinear({ weight: matrix("float32", 40, 30, 1), bias: new Float32Array(30).fill(0.25) });
    for (const [k, name] of ["a", "b"].entries())
      layer.addAdapter(name, {
        down: matrix("float32", 40, 4, 10 + k),
        up: matrix("float32", 4, 30, 20 + k),
        alpha: 8,
      });
    const x = matrix("float32", 8, 40, 3);
    const ids = ["a", "a", "a", "b", "b", null, null, "a"]; // "a" is not consecutive (rows 0–2, 7); "b" is (3, 4)
    const spy = vi.spyOn(LORA_VARIANT, "forward");
    const h = layer.forward(x, { adapterIds: ids }).data;
    const views = spy.mock.calls.map((call) => (call[2] as Float32Array).buffer === x.data.buffer);
    spy.mockRestore();
    expect(views).toEqual([false, true]); // "a" gathered, "b" a view of x
    // the same rows once more, now each group consecutive: rows 0–2 and 7 of "a" as rows 0–3 of a new batch
    const order = [0, 1, 2, 7, 3, 4, 5, 6];
    const x2 = new Float32Array(x.data.length);
    order.forEach((src, i) => {
      x2.set(x.data.subarray(src * 40, src * 40 + 40), i * 40);
    });
    const h2 = layer.forward({ data: x2, rows: 8, cols: 40 }, { adapterIds: order.map((i) => ids[i]!) }).data;
    order.forEach((src, i) => {
      expect(Array.from(h2.subarray(i * 30, i * 30 + 30))).toEqual(Array.from(h.subarray(src * 30, src * 30 + 30)));
    });
  });

  it("16 adapters over 64 rows equal 16 separate single-adapter runs", () => {
    const dIn = 12;
    const dOut = 10;
    const layer = new LoraLinear({ weight: matrix("float64", dIn, dOut, 1) });
    const names = Array.from({ length: 16 }, (_, k) => `t${k}`);
    names.forEach((name, k) => {
      layer.addAdapter(name, {
        down: matrix("float64", dIn, 4, 100 + k),
        up: matrix("float64", 4, dOut, 200 + k),
        alpha: 8,
      });
    });
    const x = matrix("float64", 64, dIn, 5);
    const ids = Array.from({ length: 64 }, (_, i) => names[(i * 5) % 16]!);
    const h = layer.forward(x, { adapterIds: ids });
    for (const name of names) {
      layer.setActive([name]);
      const full = layer.forward(x).data;
      ids.forEach((id, i) => {
        if (id === name)
          expectClose(h.data.subarray(i * dOut, (i + 1) * dOut), full.subarray(i * dOut, (i + 1) * dOut), {
            atol: 1e-13,
            rtol: 1e-13,
          });
      });
    }
  });
});

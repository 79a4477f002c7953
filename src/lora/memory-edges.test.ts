// Memory at the edges of the ops: an `out` that shares memory with an input through a second SharedArrayBuffer
// object (structuredClone, postMessage, a grown WebAssembly.Memory) is refused like one in the same buffer; typed
// arrays of another realm (a vm context, as in Jest) are accepted; results over MAX_RESULT_ELEMENTS are refused
// with "too_large" before anything is allocated.

import { runInNewContext } from "node:vm";
import { MessageChannel, receiveMessageOnPort } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { caught } from "../../test/helpers/errors.js";
import { ArgumentError, ShapeError } from "../errors.js";
import { loraForward, lowRankForward } from "./forward.js";
import { LoraLinear } from "./layer.js";
import { matmul } from "./matmul.js";
import { deltaWeight } from "./merge.js";

const view = (data: Float32Array, rows: number, cols: number) => ({ data, rows, cols });

describe("out sharing memory through another SharedArrayBuffer object", () => {
  const viaPort = (sab: SharedArrayBuffer): SharedArrayBuffer => {
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(sab);
    const copy = receiveMessageOnPort(port2)!.message as SharedArrayBuffer;
    port1.close();
    return copy;
  };
  const grown = (): [SharedArrayBuffer, () => ArrayBufferLike] => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
    const before = memory.buffer as unknown as SharedArrayBuffer;
    const after = () => {
      memory.grow(1);
      return memory.buffer;
    };
    return [before, after];
  };

  for (const [how, second] of [
    ["structuredClone", (s: SharedArrayBuffer) => structuredClone(s)],
    ["postMessage", viaPort],
  ] as const) {
    it(`is refused by loraForward, lowRankForward and matmul (${how})`, () => {
      const sab = new SharedArrayBuffer(4 * 8);
      const x = view(new Float32Array(sab, 0, 4).fill(1), 2, 2);
      const W = view(Float32Array.of(1, 2, 3, 4), 2, 2);
      const B = view(Float32Array.of(1, 1), 2, 1);
      const A = view(Float32Array.of(1, 1), 1, 2);
      const out = new Float32Array(second(sab), 8, 4); // bytes 8..24 overlap x (bytes 0..16)
      expect(out.buffer).not.toBe(x.data.buffer);
      const before = Array.from(x.data);
      for (const f of [
        () => loraForward(x, W, B, A, 1, { out }),
        () => lowRankForward(x, W, { down: B, up: A, scaling: 1 }, { out }),
      ]) {
        const e = caught(f);
        expect(e).toBeInstanceOf(ArgumentError);
        expect(e.code).toBe("invalid_argument");
        expect(e.message).toMatch(
          /^(loraForward|lowRankForward): options\.out overlaps the memory of x; pass a separate buffer$/,
        );
      }
      const m = caught(() => matmul(x, W, { out }));
      expect(m.message).toBe("matmul: options.out overlaps the memory of a; pass a separate buffer");
      expect(Array.from(x.data)).toEqual(before); // the probe put back what it flipped
    });
  }

  it("is refused for views of a WebAssembly.Memory before and after it grew", () => {
    const [before, grow] = grown();
    const x = view(new Float32Array(before, 0, 4).fill(2), 2, 2);
    const out = new Float32Array(grow(), 0, 4);
    expect(out.buffer).not.toBe(x.data.buffer);
    expect(caught(() => matmul(x, x, { out })).message).toBe(
      "matmul: options.out overlaps the memory of a; pass a separate buffer",
    );
  });

  it("accepts a different SharedArrayBuffer of the same size and contents (no false alarm)", () => {
    const x = view(new Float32Array(new SharedArrayBuffer(16)).fill(1), 2, 2);
    const out = new Float32Array(new SharedArrayBuffer(16)).fill(1);
    expect(matmul(x, x, { out }).data).toBe(out);
    expect(Array.from(out)).toEqual([2, 2, 2, 2]);
    const h = loraForward(x, x, view(Float32Array.of(1, 1), 2, 1), view(Float32Array.of(1, 0), 1, 2), 1, { out });
    expect(Array.from(h.data)).toEqual([4, 2, 4, 2]);
  });
});

describe("typed arrays from another realm", () => {
  const foreign = (values: number[], type = "Float32Array") =>
    runInNewContext(`new ${type}(${JSON.stringify(values)})`) as Float32Array;

  it("are accepted by loraForward, lowRankForward, matmul and deltaWeight with the same results", () => {
    const xs = [1, 2, 3, 4, 5, 6];
    const ws = [1, 0, -1, 2, 0.5, 1];
    const local = loraForward(
      view(Float32Array.from(xs), 2, 3),
      view(Float32Array.from(ws), 3, 2),
      view(Float32Array.of(1, 2, 3), 3, 1),
      view(Float32Array.of(0.5, -1), 1, 2),
      2,
    );
    const x = view(foreign(xs), 2, 3);
    const W = view(foreign(ws), 3, 2);
    const B = view(foreign([1, 2, 3]), 3, 1);
    const A = view(foreign([0.5, -1]), 1, 2);
    expect(x.data).not.toBeInstanceOf(Float32Array);
    const out = foreign([0, 0, 0, 0]);
    const h = loraForward(x, W, B, A, 2, { out });
    expect(h.data).toBe(out);
    expect(Array.from(out)).toEqual(Array.from(local.data));
    expect(Array.from(lowRankForward(x, W, { down: B, up: A, scaling: 2 }).data)).toEqual(Array.from(local.data));
    expect(Array.from(matmul(x, W).data)).toEqual(
      Array.from(matmul(view(Float32Array.from(xs), 2, 3), view(Float32Array.from(ws), 3, 2)).data),
    );
    expect(Array.from(deltaWeight(B, A, 2).data)).toEqual([1, -2, 2, -4, 3, -6]);
  });

  it("are accepted by LoraLinear (weight, bias, x, given adapters, DoRA magnitude)", () => {
    const local = new LoraLinear({ weight: view(Float32Array.of(1, 2, 3, 4), 2, 2), bias: Float32Array.of(1, -1) });
    local.addAdapter("a", { down: view(Float32Array.of(1, 2), 2, 1), up: view(Float32Array.of(3, 4), 1, 2) });
    const layer = new LoraLinear({ weight: view(foreign([1, 2, 3, 4]), 2, 2), bias: foreign([1, -1]) });
    layer.addAdapter("a", { down: view(foreign([1, 2]), 2, 1), up: view(foreign([3, 4]), 1, 2) });
    layer.addAdapter("d", { r: 1, useDora: true, magnitude: foreign([1, 1]) } as never);
    const xl = view(Float32Array.of(1, -2, 0.5, 3), 2, 2);
    const xf = view(foreign([1, -2, 0.5, 3]), 2, 2);
    expect(Array.from(layer.forward(xf).data)).toEqual(Array.from(local.forward(xl).data));
  });

  it("of another element type get a message that names the type", () => {
    const e = caught(() => matmul(view(foreign([1, 2], "Int32Array"), 1, 2), view(Float32Array.of(1, 2), 2, 1)));
    expect(e.code).toBe("invalid_matrix");
    expect(e.message).toBe("matmul: a.data is a Int32Array, expected a Float32Array or Float64Array");
    const x = view(Float32Array.of(1, 2), 1, 2);
    const o = caught(() => matmul(x, view(Float32Array.of(1, 2), 2, 1), { out: foreign([0], "Float64Array") }));
    expect(o.code).toBe("dtype_mismatch");
    expect(o.message).toBe("matmul: options.out is a Float64Array, expected a Float32Array like a");
  });
});

describe("results over MAX_RESULT_ELEMENTS (2^30) are refused before allocating", () => {
  const empty = (rows: number, cols: number) => view(new Float32Array(0), rows, cols);

  it("matmul [1, 0]·[0, 2^33] and [65536, 0]·[0, 65536]", () => {
    const e = caught(() => matmul(empty(1, 0), empty(0, 2 ** 33)));
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.code).toBe("too_large");
    expect(e.message).toBe(
      "matmul: the result would have shape [1, 8589934592] (8589934592 elements), expected at most 1073741824 elements (2^30); split the call",
    );
    expect(caught(() => matmul(empty(65536, 0), empty(0, 65536))).code).toBe("too_large");
    expect(Array.from(matmul(empty(3, 0), empty(0, 5)).data)).toEqual(new Array(15).fill(0));
  });

  it("loraForward, LoraLinear.forward and deltaWeight", () => {
    const up = view(new Float32Array(65536), 1, 65536);
    const e = caught(() => loraForward(empty(65536, 0), empty(0, 65536), empty(0, 1), up, 1));
    expect(e.code).toBe("too_large");
    expect(e.message).toBe(
      "loraForward: h would have shape [65536, 65536] (4294967296 elements), expected at most 1073741824 elements (2^30); split the call",
    );
    const layer = new LoraLinear({ weight: view(new Float32Array(65536), 1, 65536) });
    const big = caught(() => layer.forward(view(new Float32Array(65536), 65536, 1)));
    expect(big.code).toBe("too_large");
    expect(big.message).toMatch(/^LoraLinear\.forward: h would have shape \[65536, 65536\]/);
    const d = caught(() => deltaWeight(view(new Float32Array(65536), 65536, 1), up, 1));
    expect(d.code).toBe("too_large");
    expect(d.message).toMatch(/^deltaWeight: the delta would have shape \[65536, 65536\]/);
  });
});

// Every error LoraLinear and the layer ops raise: class, code and message, and the layer's state unchanged after
// each failed call.
import { describe, expect, it } from "vitest";
import {
  AdapterStateError,
  ArgumentError,
  deltaWeight,
  LoraError,
  LoraLinear,
  loraBackward,
  type Matrix,
  mergeAdapter,
  ShapeError,
} from "../../src/index.js";
import { matrix } from "./cases.js";

type State = "plain" | "merged" | "trained" | "mixed";

function setup(state: State): LoraLinear {
  const layer = new LoraLinear({ weight: matrix("float64", 4, 3, 1), bias: Float64Array.of(1, 2, 3) });
  layer.addAdapter("a", { down: matrix("float64", 4, 2, 2), up: matrix("float64", 2, 3, 3), alpha: 4 });
  layer.addAdapter("b", { down: matrix("float64", 4, 3, 4), up: matrix("float64", 3, 3, 5) });
  layer.addAdapter("d", { down: matrix("float64", 4, 2, 6), up: matrix("float64", 2, 3, 7), useDora: true });
  layer.setActive(["a", "b"]);
  if (state === "merged") layer.merge(["a"]);
  if (state === "trained") {
    layer.train().forward(matrix("float64", 2, 4, 8));
    layer.backward(matrix("float64", 2, 3, 9));
  }
  if (state === "mixed") layer.forward(matrix("float64", 2, 4, 8), { adapterIds: ["a", null] });
  return layer;
}

/** Everything observable about a layer. */
function snapshot(layer: LoraLinear): string {
  return JSON.stringify({
    weight: Array.from(layer.weight.data),
    names: layer.adapterNames,
    active: layer.activeAdapters,
    merged: layer.mergedAdapters,
    training: layer.training,
    adapters: layer.adapterNames.map((n) => {
      const a = layer.adapter(n);
      return {
        ...a,
        down: Array.from(a.down.data),
        up: Array.from(a.up.data),
        magnitude: a.magnitude && Array.from(a.magnitude),
      };
    }),
    grads: layer.parameters().map((p) => Array.from(p.grad)),
  });
}

const x = (rows: number, cols: number, dtype: "float32" | "float64" = "float64"): Matrix =>
  matrix(dtype, rows, cols, 11);
const m64 = (rows: number, cols: number): Matrix => matrix("float64", rows, cols, 12);

interface ErrorCase {
  what: string;
  state?: State;
  call: (l: LoraLinear) => unknown;
  cls: typeof LoraError;
  code: string;
  message: RegExp;
}

const CASES: ErrorCase[] = [
  // unknown names
  {
    what: "setActive with an unknown name",
    call: (l) => l.setActive(["a", "zz"]),
    cls: AdapterStateError,
    code: "unknown_adapter",
    message: /^LoraLinear\.setActive: no adapter named "zz" \(adapters: "a", "b", "d"\)$/,
  },
  {
    what: "removeAdapter of an unknown name",
    call: (l) => l.removeAdapter("zz"),
    cls: AdapterStateError,
    code: "unknown_adapter",
    message: /^LoraLinear\.removeAdapter: no adapter named "zz"/,
  },
  {
    what: "adapter() of an unknown name",
    call: (l) => l.adapter("zz"),
    cls: AdapterStateError,
    code: "unknown_adapter",
    message: /^LoraLinear\.adapter: no adapter named "zz"/,
  },
  {
    what: "merge of an unknown name (after a valid one)",
    call: (l) => l.merge(["a", "zz"]),
    cls: AdapterStateError,
    code: "unknown_adapter",
    message: /^LoraLinear\.merge: no adapter named "zz"/,
  },
  {
    what: "adapterIds naming an unknown adapter",
    call: (l) => l.forward(x(3, 4), { adapterIds: ["a", null, "zz"] }),
    cls: AdapterStateError,
    code: "unknown_adapter",
    message: /^LoraLinear\.forward: adapterIds\[2\] is "zz", which is not an adapter of this layer$/,
  },
  {
    what: "addWeightedAdapter with an unknown source",
    call: (l) => l.addWeightedAdapter(["a", "zz"], [1, 1], "c", { combination: "cat" }),
    cls: AdapterStateError,
    code: "unknown_adapter",
    message: /^LoraLinear\.addWeightedAdapter: no adapter named "zz"/,
  },
  // duplicates and ranks
  {
    what: "a duplicate name",
    call: (l) => l.addAdapter("a", { r: 2 }),
    cls: AdapterStateError,
    code: "duplicate_adapter",
    message: /^LoraLinear\.addAdapter: adapter "a" already exists; remove it first or pick another name$/,
  },
  {
    what: "addWeightedAdapter onto an existing name",
    call: (l) => l.addWeightedAdapter(["a"], [1], "b", { combination: "cat" }),
    cls: AdapterStateError,
    code: "duplicate_adapter",
    message: /^LoraLinear\.addAdapter: adapter "b" already exists/,
  },
  {
    what: "r = 0",
    call: (l) => l.addAdapter("c", { r: 0 }),
    cls: ShapeError,
    code: "invalid_rank",
    message: /^LoraLinear\.addAdapter: r must be a positive integer, got 0$/,
  },
  {
    what: "r < 0",
    call: (l) => l.addAdapter("c", { r: -2, alpha: 1 }),
    cls: ShapeError,
    code: "invalid_rank",
    message: /^LoraLinear\.addAdapter: r must be a positive integer, got -2$/,
  },
  {
    what: "r not an integer",
    call: (l) => l.addAdapter("c", { r: 1.5 }),
    cls: ShapeError,
    code: "invalid_rank",
    message: /got 1\.5$/,
  },
  {
    what: "down with zero columns",
    call: (l) => l.addAdapter("c", { down: m64(4, 0), up: m64(0, 3) }),
    cls: ShapeError,
    code: "invalid_rank",
    message: /^LoraLinear\.addAdapter: down has shape \[4, 0\], so r = 0; expected r ≥ 1$/,
  },
  {
    what: "r disagreeing with down",
    call: (l) => l.addAdapter("c", { r: 3, down: m64(4, 2), up: m64(2, 3) } as never),
    cls: ShapeError,
    code: "invalid_rank",
    message: /^LoraLinear\.addAdapter: r is 3 but down has 2 columns/,
  },
  // shapes
  {
    what: "down with the wrong dIn",
    call: (l) => l.addAdapter("c", { down: m64(5, 2), up: m64(2, 3) }),
    cls: ShapeError,
    code: "shape_mismatch",
    message: /^LoraLinear\.addAdapter: down has shape \[5, 2\], expected \[4, r\] because the base weight has dIn = 4$/,
  },
  {
    what: "up that does not fit",
    call: (l) => l.addAdapter("c", { down: m64(4, 2), up: m64(2, 5) }),
    cls: ShapeError,
    code: "shape_mismatch",
    message:
      /^LoraLinear\.addAdapter: up has shape \[2, 5\], expected \[2, 3\] because down is \[4, 2\] \(r = 2\) and the base weight has dOut = 3$/,
  },
  {
    what: "a magnitude of the wrong length",
    call: (l) => l.addAdapter("c", { down: m64(4, 2), up: m64(2, 3), useDora: true, magnitude: new Float64Array(4) }),
    cls: ShapeError,
    code: "shape_mismatch",
    message: /^LoraLinear\.addAdapter: magnitude has shape \[4\], expected \[3\] \(dOut\)$/,
  },
  {
    what: "adapterIds shorter than the batch",
    call: (l) => l.forward(x(3, 4), { adapterIds: ["a", null] }),
    cls: ShapeError,
    code: "shape_mismatch",
    message: /^LoraLinear\.forward: adapterIds has 2 entries, expected 3 \(one per row of x, which has 3 rows\)$/,
  },
  {
    what: "x with the wrong dIn",
    call: (l) => l.forward(x(2, 5)),
    cls: ShapeError,
    code: "shape_mismatch",
    message: /^LoraLinear\.forward: x has shape \[2, 5\], expected \[n, 4\] \(the layer is 4 → 3\)$/,
  },
  {
    what: "dH with the wrong rows",
    state: "trained",
    call: (l) => l.backward(m64(3, 3)),
    cls: ShapeError,
    code: "shape_mismatch",
    message: /^LoraLinear\.backward: dH has shape \[3, 3\], expected \[2, 3\] like the last forward's output$/,
  },
  {
    what: "dH with the wrong cols",
    state: "trained",
    call: (l) => l.backward(m64(2, 4)),
    cls: ShapeError,
    code: "shape_mismatch",
    message: /^LoraLinear\.backward: dH has shape \[2, 4\], expected \[n, 3\]/,
  },
  {
    what: "linear combination of unequal ranks",
    call: (l) => l.addWeightedAdapter(["a", "b"], [1, 1], "c", { combination: "linear" }),
    cls: ShapeError,
    code: "shape_mismatch",
    message:
      /^LoraLinear\.addWeightedAdapter: "linear" needs equal ranks, but "a" has r = 2 and "b" has r = 3; use combination "cat"$/,
  },
  {
    what: "x data of the wrong length",
    call: (l) => l.forward({ data: new Float64Array(7), rows: 2, cols: 4 }),
    cls: ShapeError,
    code: "data_length_mismatch",
    message: /^LoraLinear\.forward: x\.data has length 7, expected 8 for shape \[2, 4\]$/,
  },
  {
    what: "x that is not a matrix",
    call: (l) => l.forward([[1, 2, 3, 4]] as never),
    cls: ShapeError,
    code: "invalid_matrix",
    message: /^LoraLinear\.forward: x is not a \{data, rows, cols\} matrix/,
  },
  // state
  {
    what: "backward before any forward",
    call: (l) => l.backward(m64(2, 3)),
    cls: AdapterStateError,
    code: "adapter_state",
    message:
      /^LoraLinear\.backward: no training-mode forward pass to differentiate; call train\(\) and forward\(x\) first/,
  },
  {
    what: "backward after a mixed batch",
    state: "mixed",
    call: (l) => l.backward(m64(2, 3)),
    cls: AdapterStateError,
    code: "adapter_state",
    message: /^LoraLinear\.backward: the last forward was a mixed-adapter batch, which is inference only$/,
  },
  {
    what: "a mixed batch while merged",
    state: "merged",
    call: (l) => l.forward(x(2, 4), { adapterIds: ["b", null] }),
    cls: AdapterStateError,
    code: "adapter_state",
    message:
      /^LoraLinear\.forward: mixed-adapter batches are refused while adapters are merged \(merged: "a"\); call unmerge\(\) first$/,
  },
  {
    what: "a DoRA adapter in a mixed batch",
    call: (l) => l.forward(x(2, 4), { adapterIds: ["a", "d"] }),
    cls: AdapterStateError,
    code: "adapter_state",
    message:
      /^LoraLinear\.forward: adapterIds\[1\] is "d", a dora adapter; mixed-adapter batches support plain LoRA only$/,
  },
  {
    what: "removing a merged adapter",
    state: "merged",
    call: (l) => l.removeAdapter("a"),
    cls: AdapterStateError,
    code: "adapter_state",
    message: /^LoraLinear\.removeAdapter: adapter "a" is merged into the base weight; call unmerge\(\) first$/,
  },
  {
    what: "combining a DoRA adapter",
    call: (l) => l.addWeightedAdapter(["a", "d"], [1, 1], "c", { combination: "cat" }),
    cls: AdapterStateError,
    code: "adapter_state",
    message: /^LoraLinear\.addWeightedAdapter: source "d" is a DoRA adapter; only plain LoRA adapters can be combined$/,
  },
  // values and types
  {
    what: "x of another dtype",
    call: (l) => l.forward(x(2, 4, "float32")),
    cls: ArgumentError,
    code: "dtype_mismatch",
    message: /^LoraLinear\.forward: x is float32, expected float64 like the layer's weight$/,
  },
  {
    what: "down of another dtype",
    call: (l) => l.addAdapter("c", { down: matrix("float32", 4, 2, 1), up: m64(2, 3) }),
    cls: ArgumentError,
    code: "dtype_mismatch",
    message: /^LoraLinear\.addAdapter: down is float32, expected float64 like the base weight/,
  },
  {
    what: "dropout = 1",
    call: (l) => l.addAdapter("c", { r: 2, dropout: 1 }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addAdapter: dropout must be a number in \[0, 1\), got 1$/,
  },
  {
    what: "an unknown init",
    call: (l) => l.addAdapter("c", { r: 2, init: "pissa" as never }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addAdapter: init is "pissa", expected "default", "gaussian" or "none"$/,
  },
  {
    what: "an unknown scaling rule",
    call: (l) => l.addAdapter("c", { r: 2, scaling: "dora" as never }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addAdapter: options\.scaling is "dora", expected "standard" or "rslora"$/,
  },
  {
    what: "a non-finite alpha",
    call: (l) => l.addAdapter("c", { r: 2, alpha: Number.NaN }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addAdapter: alpha must be a finite number, got NaN$/,
  },
  {
    what: "an empty name",
    call: (l) => l.addAdapter("", { r: 2 }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addAdapter: name must be a non-empty string, got ""$/,
  },
  {
    what: "a magnitude without DoRA",
    call: (l) => l.addAdapter("c", { down: m64(4, 2), up: m64(2, 3), magnitude: new Float64Array(3) }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addAdapter: magnitude is only used with useDora: true$/,
  },
  {
    what: "an unknown combination",
    call: (l) => l.addWeightedAdapter(["a", "b"], [1, 1], "c", { combination: "svd" as never }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addWeightedAdapter: combination is "svd", expected "cat" or "linear"$/,
  },
  {
    what: "weights of the wrong length",
    call: (l) => l.addWeightedAdapter(["a", "b"], [1], "c", { combination: "cat" }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addWeightedAdapter: weights has 1 entries, expected 2 \(one per source\)$/,
  },
  {
    what: "a non-finite weight",
    call: (l) => l.addWeightedAdapter(["a", "b"], [1, Number.POSITIVE_INFINITY], "c", { combination: "cat" }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addWeightedAdapter: weights\[1\] must be a finite number, got Infinity$/,
  },
  {
    what: "no sources",
    call: (l) => l.addWeightedAdapter([], [], "c", { combination: "cat" }),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.addWeightedAdapter: sources must be a non-empty array of adapter names$/,
  },
  {
    what: "setActive with a non-array",
    call: (l) => l.setActive("a" as never),
    cls: ArgumentError,
    code: "invalid_argument",
    message: /^LoraLinear\.setActive: names must be an array of adapter names$/,
  },
  {
    what: "a safe merge producing NaN",
    call: (l) => {
      const up = l.adapter("b").up.data;
      const keep = up[0]!;
      up[0] = Number.NaN;
      try {
        l.merge(["a", "b"], { safe: true });
      } finally {
        up[0] = keep;
      }
    },
    cls: ArgumentError,
    code: "non_finite",
    message:
      /^LoraLinear\.merge: merged weight has 4 non-finite values \(first at \[0, 0\]: NaN\); the base weight was left unchanged/,
  },
];

CASES.push(
  {
    what: "mergeAndUnload with a safe merge producing Inf",
    call: (l) => {
      const down = l.adapter("a").down.data;
      const keep = down[5]!;
      down[5] = Number.POSITIVE_INFINITY; // row 2, col 1 of down → row 2 of ΔW
      try {
        l.mergeAndUnload({ safe: true });
      } finally {
        down[5] = keep;
      }
    },
    cls: ArgumentError,
    code: "non_finite",
    message:
      /^LoraLinear\.merge: merged weight has 3 non-finite values \(first at \[2, 0\]: -?Infinity\); the base weight was left unchanged/,
  },
  {
    what: "backward after train(false)",
    state: "trained",
    call: (l) => {
      l.train(false);
      try {
        l.backward(m64(2, 3));
      } finally {
        l.train();
      }
    },
    cls: AdapterStateError,
    code: "adapter_state",
    message: /^LoraLinear\.backward: no training-mode forward pass to differentiate/,
  },
);

describe("LoraLinear errors", () => {
  it.each(CASES)("$what → $code, state unchanged", (c) => {
    const layer = setup(c.state ?? "plain");
    const before = snapshot(layer);
    let caught: unknown;
    try {
      c.call(layer);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(c.cls);
    const err = caught as LoraError;
    expect(err.code).toBe(c.code);
    expect(err.message).toMatch(c.message);
    expect(snapshot(layer)).toBe(before);
  });

  it("backward before forward is still refused after a failed call, and works after a forward", () => {
    const layer = setup("plain");
    expect(() => layer.forward(x(2, 5))).toThrow(/expected \[n, 4\]/);
    expect(() => layer.backward(m64(2, 3))).toThrow(/no training-mode forward pass/);
    layer.train().forward(x(2, 4));
    expect(layer.backward(m64(2, 3)).cols).toBe(4);
    layer.merge(["b"]); // state changes clear the cached forward
    expect(() => layer.backward(m64(2, 3))).toThrow(/no training-mode forward pass/);
  });
});

describe("constructor and op errors", () => {
  const cases: [string, () => unknown, string, RegExp][] = [
    [
      "bias of the wrong length",
      () => new LoraLinear({ weight: m64(4, 3), bias: new Float64Array(4) }),
      "shape_mismatch",
      /^LoraLinear: bias has shape \[4\], expected \[3\] \(dOut of weight \[4, 3\], layout "in_out"\)$/,
    ],
    [
      "bias of another dtype",
      () => new LoraLinear({ weight: m64(4, 3), bias: new Float32Array(3) }),
      "dtype_mismatch",
      /^LoraLinear: bias must be a Float64Array like the weight$/,
    ],
    [
      "an unknown layout",
      () => new LoraLinear({ weight: m64(4, 3), layout: "col" as never }),
      "invalid_argument",
      /^LoraLinear: layout is "col", expected "in_out" or "out_in"$/,
    ],
    [
      "a nested weight",
      () => new LoraLinear({ weight: [[1, 2]] as never }),
      "invalid_argument",
      /^LoraLinear: weight must be a typed \{data, rows, cols\} or \{data, dims\}, not a nested array$/,
    ],
    [
      "deltaWeight with up not [r, dOut]",
      () => deltaWeight(m64(4, 2), m64(3, 5), 1),
      "shape_mismatch",
      /^deltaWeight: up has shape \[3, 5\], expected \[2, 5\] because down is \[4, 2\] \(r = 2\)/,
    ],
    [
      "mergeAdapter with W of the wrong shape",
      () => mergeAdapter(m64(5, 3), { down: m64(4, 2), up: m64(2, 3), scaling: 1 }),
      "shape_mismatch",
      /^mergeAdapter: down has shape \[4, 2\], expected \[5, r\] because the base weight has dIn = 5; W is \[5, 3\] in layout "in_out"$/,
    ],
    [
      "loraBackward with dH of the wrong shape",
      () => loraBackward(m64(2, 4), m64(4, 3), { down: m64(4, 2), up: m64(2, 3), scaling: 1 }, m64(2, 2)),
      "shape_mismatch",
      /^loraBackward: dH has shape \[2, 2\], expected \[2, 3\] like h = x·W \(x is \[2, 4\]\)$/,
    ],
    [
      "loraBackward with x of the wrong dIn",
      () => loraBackward(m64(2, 5), m64(4, 3), { down: m64(4, 2), up: m64(2, 3), scaling: 1 }, m64(2, 3)),
      "shape_mismatch",
      /^loraBackward: x has shape \[2, 5\], expected \[n, 4\] because W has dIn = 4$/,
    ],
  ];
  it.each(cases)("%s", (_, f, code, message) => {
    let caught: unknown;
    try {
      f();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(LoraError);
    expect((caught as LoraError).code).toBe(code);
    expect((caught as Error).message).toMatch(message);
  });
});

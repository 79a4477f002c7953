// A LoraLinear over a pre-packed weight (options.packed: kernel panels, src/kernels/panel.ts) behaves exactly like
// the same layer over the unpacked weight: every forward (no adapter, one fused adapter, several, mixed rows, DoRA),
// backward, merge and unmerge give the same bits; bad packed weights are refused by code.
import { describe, expect, it } from "vitest";
import { kernelFloat32Array, LoraLinear, packPanels, panelLength } from "../../src/index.js";
import { caught } from "../helpers/errors.js";
import { fill } from "../helpers/random.js";

const [dIn, dOut, n] = [70, 45, 6]; // n·dIn·dOut over the WebAssembly threshold; dOut not a multiple of 16

function pair() {
  const w = fill(new Float32Array(dIn * dOut), 1);
  const bias = fill(new Float32Array(dOut), 2);
  const plain = new LoraLinear({ weight: { data: w.slice(), rows: dIn, cols: dOut }, bias: bias.slice() });
  const data = packPanels(kernelFloat32Array(panelLength(dIn, dOut)), w, dIn, dOut, false);
  const packed = new LoraLinear({ weight: { data, rows: dIn, cols: dOut }, bias: bias.slice(), packed: true });
  const adapters = [
    { name: "a", r: 4, alpha: 8, seed: 3 },
    { name: "b", r: 3, alpha: 3, seed: 4 },
    { name: "d", r: 2, alpha: 4, seed: 5, useDora: true },
  ];
  for (const layer of [plain, packed])
    for (const a of adapters) {
      const down = fill(new Float32Array(dIn * a.r), a.seed);
      const up = fill(new Float32Array(a.r * dOut), a.seed + 10);
      layer.addAdapter(a.name, {
        down: { data: down, rows: dIn, cols: a.r },
        up: { data: up, rows: a.r, cols: dOut },
        alpha: a.alpha,
        useDora: a.useDora,
      });
    }
  return { plain, packed, w };
}

const x = { data: fill(new Float32Array(n * dIn), 9), rows: n, cols: dIn };

describe("LoraLinear over a packed weight", () => {
  it("forward: no adapter, one (fused), two, DoRA, and mixed rows give the unpacked layer's bits", () => {
    const { plain, packed } = pair();
    for (const active of [[], ["a"], ["a", "b"], ["d"]]) {
      plain.setActive(active);
      packed.setActive(active);
      expect(packed.forward(x).data).toEqual(plain.forward(x).data);
    }
    const ids = ["a", null, "b", "a", null, "b"];
    expect(packed.forward(x, { adapterIds: ids }).data).toEqual(plain.forward(x, { adapterIds: ids }).data);
  });

  it("backward gives the same dX and gradients", () => {
    const { plain, packed } = pair();
    const dH = { data: fill(new Float32Array(n * dOut), 11), rows: n, cols: dOut };
    for (const layer of [plain, packed]) layer.setActive(["a", "d"]).train();
    plain.forward(x);
    packed.forward(x);
    expect(packed.backward(dH).data).toEqual(plain.backward(dH).data);
    const grads = (l: LoraLinear) => l.parameters().map((p) => Array.from(p.grad));
    expect(grads(packed)).toEqual(grads(plain));
  });

  it("merge and unmerge (plain and DoRA) change the packed weight exactly like the unpacked one", () => {
    const { plain, packed, w } = pair();
    for (const names of [["a", "b"], ["d"]]) {
      plain.merge(names);
      packed.merge(names);
      expect(packed.weight.data).toEqual(plain.weight.data);
      expect(packed.weight.data).not.toEqual(w);
      plain.setActive([]);
      packed.setActive([]);
      expect(packed.forward(x).data).toEqual(plain.forward(x).data);
      plain.unmerge();
      packed.unmerge();
      expect(packed.weight.data).toEqual(plain.weight.data);
    }
    expect(packed.weight).toMatchObject({ rows: dIn, cols: dOut });
  });

  it("refuses a packed weight that is not float32, of the wrong length, with dims that are not sizes, or out_in", () => {
    const data = new Float32Array(panelLength(dIn, dOut));
    const cases: [unknown, string, string][] = [
      [
        { weight: { data: new Float64Array(data.length), rows: dIn, cols: dOut }, packed: true },
        "unsupported_dtype",
        "LoraLinear: a packed weight's data must be a Float32Array (packPanels)",
      ],
      [
        { weight: { data: new Float32Array(dIn * dOut), rows: dIn, cols: dOut }, packed: true },
        "data_length_mismatch",
        `LoraLinear: packed weight data has ${dIn * dOut} floats, expected panelLength(${dIn}, ${dOut}) = ${data.length}`,
      ],
      [
        { weight: { data, rows: -1, cols: dOut }, packed: true },
        "invalid_matrix",
        "LoraLinear: a packed weight needs integer rows (dIn) and cols (dOut) ≥ 0",
      ],
      [
        { weight: { data, rows: dIn, cols: dOut }, packed: true, layout: "out_in" },
        "invalid_argument",
        'LoraLinear: layout is "out_in" but a packed weight is given as its logical [dIn, dOut] ("in_out")',
      ],
      [
        { weight: { data, rows: dIn, cols: dOut }, packed: true, bias: new Float32Array(3) },
        "shape_mismatch",
        `LoraLinear: bias has shape [3], expected [${dOut}] (dOut of packed weight [${dIn}, ${dOut}])`,
      ],
    ];
    for (const [options, code, text] of cases) {
      const e = caught(() => new LoraLinear(options as ConstructorParameters<typeof LoraLinear>[0]));
      expect(e.code).toBe(code);
      expect(e.message).toContain(text);
    }
  });
});

describe("adapters of a packed layer live in kernel memory and give it back", () => {
  it("removeAdapter releases down and up; the next array of that size reuses the space, zeroed first", async () => {
    const { kernelFloat32Array: kf, releaseKernelArray } = await import("../../src/index.js");
    const { packed } = pair();
    const a = packed.adapter("a");
    expect(a.down.data.buffer).toBe(packed.adapter("b").down.data.buffer); // one kernel memory
    const down = a.down.data as Float32Array;
    const at = down.byteOffset;
    expect(down.some((v) => v !== 0)).toBe(true);
    packed.removeAdapter("a");
    expect(releaseKernelArray(down)).toBe(false); // already given back
    const next = kf(down.length);
    expect(next.byteOffset).toBe(at);
    expect(next.every((v) => v === 0)).toBe(true);
    expect(releaseKernelArray(next)).toBe(true);
    expect(releaseKernelArray(new Float32Array(4))).toBe(false); // not a kernel array
  });
});

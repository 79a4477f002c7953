// The dispatching kernels of select.ts on problems large enough to leave TypeScript: the LoRA epilogue
// addLowRank against the float64 reference, and its exact-zero guarantee.
import { describe, expect, it } from "vitest";
import { closeMismatch, gemmBound, U_F32 } from "../../test/helpers/close.js";
import { caught } from "../../test/helpers/errors.js";
import { fill } from "../../test/helpers/random.js";
import { ArgumentError, KernelError } from "../errors.js";
import { loraForward } from "../lora/forward.js";
import { gemmReference } from "./reference.js";
import { addLowRank, configureKernels, kernelFloat32Array, kernelInfo, WASM_MIN_MACS } from "./select.js";
import { WasmGemm } from "./wasm/runtime.js";

describe("addLowRank (dispatching)", () => {
  const [n, r, dOut] = [37, 5, 67]; // odd sizes, n·r·dOut above the WebAssembly threshold
  it("uses the WebAssembly path for this size where it is available", () => {
    expect(n * r * dOut).toBeGreaterThanOrEqual(WASM_MIN_MACS);
    expect(["wasm-simd", "wasm-relaxed-simd"]).toContain(kernelInfo().backend);
  });

  it("out += s·t·up within the float32 bound", () => {
    const t = fill(new Float32Array(n * r), 1);
    const up = fill(new Float32Array(r * dOut), 2);
    const out = fill(new Float32Array(n * dOut), 3);
    const before = Float64Array.from(out);
    const low = new Float64Array(n * dOut);
    const gauge = new Float64Array(n * dOut);
    gemmReference(low, gauge, t, up, n, r, dOut);
    const s = 0.75;
    expect(addLowRank(out, t, up, n, r, dOut, s)).toBe(out);
    const want = Float64Array.from(before, (v, i) => v + s * low[i]!);
    const bound = gemmBound(
      U_F32,
      r + 2,
      gauge.map((g) => s * g),
      want,
    ).map((b, i) => b + U_F32 * Math.abs(before[i]!));
    expect(closeMismatch(out, want, { bound, shape: [n, dOut] })).toBeNull();
  });

  it("up = 0 or s = 0 leaves out bit-for-bit unchanged, -0 included", () => {
    const out = fill(new Float32Array(n * dOut), 4);
    out[0] = -0;
    const before = Float32Array.from(out);
    addLowRank(out, fill(new Float32Array(n * r), 5), new Float32Array(r * dOut), n, r, dOut, 2);
    addLowRank(out, fill(new Float32Array(n * r), 6), fill(new Float32Array(r * dOut), 7), n, r, dOut, 0);
    expect(out).toEqual(before);
    expect(Object.is(out[0], -0)).toBe(true);
  });
});

describe("configureKernels and kernelFloat32Array refuse bad requests and change nothing", () => {
  it("configureKernels: threads must be an integer ≥ 1, backend auto or typescript", () => {
    const before = configureKernels({ threads: 2 });
    for (const [options, text] of [
      [{ threads: Number.NaN }, "options.threads is NaN, expected an integer ≥ 1"],
      [{ threads: -1 }, "options.threads is -1, expected an integer ≥ 1"],
      [{ threads: 0 }, "options.threads is 0, expected an integer ≥ 1"],
      [{ threads: 1.5 }, "options.threads is 1.5, expected an integer ≥ 1"],
      [{ threads: Number.POSITIVE_INFINITY }, "options.threads is Infinity, expected an integer ≥ 1"],
      [{ threads: "4" }, 'options.threads is "4", expected an integer ≥ 1'],
      [{ backend: "gpu" }, 'options.backend is "gpu", expected "auto" or "typescript"'],
      [null, "options is null, expected an object"],
    ] as const) {
      const e = caught(() => configureKernels(options as never));
      expect(e).toBeInstanceOf(ArgumentError);
      expect(e.code).toBe("invalid_argument");
      expect(e.message.startsWith(`configureKernels: ${text}`)).toBe(true);
      expect(kernelInfo()).toEqual(before);
    }
    // the products still use the configured threads, and give right answers (NaN threads gave zeros)
    const x = { data: Float32Array.from({ length: 128 * 128 }, (_, i) => (i % 9) - 4), rows: 128, cols: 128 };
    const h = loraForward(
      x,
      x,
      { data: new Float32Array(128), rows: 128, cols: 1 },
      { data: new Float32Array(128), rows: 1, cols: 128 },
      1,
    );
    const ref = new Float64Array(128 * 128);
    gemmReference(ref, new Float64Array(128 * 128), x.data, x.data, 128, 128, 128);
    expect(Array.from(h.data)).toEqual(Array.from(ref));
    configureKernels();
  });

  it("kernelFloat32Array: a length beyond the kernel memory is too_large and takes no space", () => {
    const info = kernelInfo();
    const e = caught(() => kernelFloat32Array(2 ** 29)); // 2 GiB: more than the shared kernel memory holds
    expect(e).toBeInstanceOf(ArgumentError);
    expect(e.code).toBe("too_large");
    expect(e.message).toMatch(
      /^kernelFloat32Array: length 536870912 \(2147483648 bytes\) does not fit in the kernel memory, expected at most \d+ more elements \(2 GiB in all\)$/,
    );
    expect(kernelInfo()).toEqual(info);
    const small = kernelFloat32Array(8);
    expect(small.buffer).toBeInstanceOf(SharedArrayBuffer); // still a resident array in the kernel memory
    const bad = caught(() => kernelFloat32Array(-1));
    expect(bad.code).toBe("invalid_argument");
    expect(bad.message).toBe("kernelFloat32Array: length is -1, expected an integer ≥ 0");
  });

  it("WasmGemm.allocResident: a memory that does not grow is out_of_memory and leaves the layout as it was", () => {
    const w = WasmGemm.createSync("simd", true);
    const first = w.allocResident(16)!;
    const need = w.bytesFor(64, 64, 64, 0, 1);
    const memory = (w as unknown as { memory: WebAssembly.Memory }).memory;
    const grow = memory.grow;
    memory.grow = () => {
      throw new RangeError("WebAssembly.Memory.grow(): Maximum memory size exceeded");
    };
    const e = caught(() => w.allocResident(1 << 24));
    memory.grow = grow;
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe("out_of_memory");
    expect(e.message).toMatch(
      /^kernelFloat32Array: length 16777216 \(67108864 bytes\): the kernel memory could not grow to \d+ bytes \(WebAssembly.Memory.grow\(\): Maximum memory size exceeded\)$/,
    );
    expect(w.bytesFor(64, 64, 64, 0, 1)).toBe(need);
    expect(w.allocResident(16)!.byteOffset).toBe(first.byteOffset + 64);
  });
});

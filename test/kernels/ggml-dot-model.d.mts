// Types of test/kernels/ggml-dot-model.mjs for the TypeScript tests that import it.
export declare function ggmlDotModel(
  x: Float32Array,
  w: { bytes: Uint8Array; type: "q8_0" | "q4_0" },
  n: number,
  dIn: number,
  dOut: number,
  lr: { down: Float32Array; up: Float32Array; r: number; s: number } | undefined,
  deps: {
    quantizeMatrix: (m: { data: Float32Array; rows: number; cols: number }, type: "q8_0") => { bytes: Uint8Array };
    decodeF16: (h: number) => number;
  },
): { h: Float64Array; bound: Float64Array };

// Types of test/kernels/rows-match.mjs for the TypeScript tests that import it.
export declare function rowsMismatches(
  w: { gemm: (...args: never[]) => Float32Array },
  n: number,
  k: number,
  k2: number,
  rand: (len: number) => Float32Array,
): string[];

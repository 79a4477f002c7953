// Deterministic test data: fills a typed array with values in [-1, 1) from a small LCG (tests never call
// Math.random), so every run and every machine sees the same numbers.

/** Fills a with values in [-1, 1) from seed and returns it. */
export function fill<T extends Float32Array | Float64Array>(a: T, seed: number): T {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

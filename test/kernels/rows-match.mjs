// Shared by src/kernels/kernels.test.ts and test/kernels/relaxed-child.mjs: rows of an m = 20 product, which takes
// the packed GEMM path (m > 16), against the same rows computed 1–3 at a time, which take the unpacked m < 4 paths
// (b as stored and transposed), and 4, 9 and 16 at a time, which take the small-m path (4 <= m <= 16: b packed one
// 16-column strip at a time), with a k2 extension and both alpha/beta combines. Returns the cases that differ in any
// bit (an empty list when every row matches).

/**
 * @param {{ gemm: Function }} w a WasmGemm
 * @param {number} n @param {number} k @param {number} k2
 * @param {(len: number) => Float32Array} rand seeded data
 * @returns {string[]}
 */
export function rowsMismatches(w, n, k, k2, rand) {
  const m = 20;
  const bad = [];
  for (const tB of [false, true]) {
    for (const [alpha, beta] of [
      [1, 0],
      [-0.75, 1],
    ]) {
      const a = rand(m * k);
      const b = rand(k * n);
      const a2 = rand(m * k2);
      const b2 = rand(k2 * n);
      const start = rand(m * n);
      const full = w.gemm(start.slice(), a, b, m, k, n, false, tB, alpha, beta, 1, a2, b2, k2);
      for (const [i0, rows] of [
        [0, 1],
        [1, 3],
        [4, 2],
        [6, 4],
        [10, 9],
        [4, 16],
      ]) {
        const part = w.gemm(
          start.slice(i0 * n, (i0 + rows) * n),
          a.slice(i0 * k, (i0 + rows) * k),
          b,
          rows,
          k,
          n,
          false,
          tB,
          alpha,
          beta,
          1,
          a2.slice(i0 * k2, (i0 + rows) * k2),
          b2,
          k2,
        );
        const want = full.slice(i0 * n, (i0 + rows) * n);
        if (!Buffer.from(part.buffer).equals(Buffer.from(want.buffer))) {
          bad.push(`n ${n} k ${k} k2 ${k2} transB ${tB} alpha ${alpha} beta ${beta}: rows ${i0}..${i0 + rows - 1}`);
        }
      }
    }
  }
  return bad;
}

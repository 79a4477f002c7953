// Products with a pre-packed b (bit 3 of gemm's transB argument): op(b) [k, n] stored as ⌈n/16⌉ panels of NR = 16
// columns, panel s = k rows of 16 floats (row p = op(b)[p, 16s .. 16s + 15], zero past n), back to back, so
// element (p, j) is at b + ((⌊j/16⌋·k + p)·16 + j mod 16)·4. Every element is summed in the order of gemm.ts's
// header (per KC block from +0 in increasing p, the k2 extension after the last block's k values, then out =
// alpha·acc or out + alpha·acc), so a panel product has exactly the bits of the same product on b unpacked.

import { fma, KC, NR } from "./common";


/**
 * Row i of out over [j0, j1) (j0 a multiple of 16): one panel at a time, its 16 columns in four f32x4
 * accumulators, the panel read once as one sequential stream. work: 64 bytes of scratch (the last, partial panel).
 */
export function gemvPanelRow(
  out: usize, a: usize, b: usize, m: i32, k: i32, n: i32, transA: i32, alpha: f32, beta: i32,
  a2: usize, b2: usize, k2: i32, j0: i32, j1: i32, work: usize, i: i32,
): void {
  const sp: usize = transA ? <usize>m << 2 : 4; // stride of op(a)[i, p] in p
  const ai = a + (transA ? <usize>i << 2 : (<usize>i * k) << 2);
  const ci = out + ((<usize>i * n) << 2);
  const tmp = (work + 63) & ~(<usize>63);
  const va = f32x4.splat(alpha);
  for (let jc = j0; jc < j1; jc += NR) {
    const nr = min(NR, j1 - jc);
    const pan = b + ((<usize>(jc >> 4) * k) << 6);
    const c = ci + (<usize>jc << 2);
    let pc = 0;
    let first = true;
    while (true) {
      const pe = min(k, pc + KC);
      const last = pe >= k;
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let pb = pan + (<usize>pc << 6);
      let pa = ai + <usize>pc * sp;
      for (let p = pc; p < pe; p++) {
        const av = v128.load32_splat(pa);
        c0 = fma(av, v128.load(pb), c0);
        c1 = fma(av, v128.load(pb, 16), c1);
        c2 = fma(av, v128.load(pb, 32), c2);
        c3 = fma(av, v128.load(pb, 48), c3);
        pa += sp;
        pb += 64;
      }
      if (last) {
        for (let q = 0; q < k2; q++) {
          const av = v128.load32_splat(a2 + ((<usize>i * k2 + q) << 2));
          let row = b2 + ((<usize>q * n + jc) << 2);
          if (nr < NR) {
            // the last panel's row of b2 has nr columns: copied into zeroed scratch, never read past b2
            memory.fill(tmp, 0, 64);
            memory.copy(tmp, row, <usize>nr << 2);
            row = tmp;
          }
          c0 = fma(av, v128.load(row), c0);
          c1 = fma(av, v128.load(row, 16), c1);
          c2 = fma(av, v128.load(row, 32), c2);
          c3 = fma(av, v128.load(row, 48), c3);
        }
      }
      const overwrite = first && beta == 0;
      if (nr == NR) {
        combine(c, f32x4.mul(va, c0), overwrite);
        combine(c + 16, f32x4.mul(va, c1), overwrite);
        combine(c + 32, f32x4.mul(va, c2), overwrite);
        combine(c + 48, f32x4.mul(va, c3), overwrite);
      } else {
        // the same two roundings (multiply, then add) per column as the vector lanes above
        v128.store(tmp, c0);
        v128.store(tmp, c1, 16);
        v128.store(tmp, c2, 32);
        v128.store(tmp, c3, 48);
        for (let j = 0; j < nr; j++) {
          const x = alpha * load<f32>(tmp + (<usize>j << 2));
          const cj = c + (<usize>j << 2);
          store<f32>(cj, overwrite ? x : load<f32>(cj) + x);
        }
      }
      first = false;
      if (last) break;
      pc = pe;
    }
  }
}

@inline function combine(c: usize, x: v128, overwrite: bool): void {
  v128.store(c, overwrite ? x : f32x4.add(v128.load(c), x));
}

/**
 * Packs the block [pc, pe) of panels covering columns [jc, jc + nc) (jc a multiple of 16) followed by
 * b2[0 .. ext, jc .. jc + nc) as gemm.ts's packB does: strip s = kc rows of NR floats. The panel part is one
 * contiguous copy per strip.
 */
export function packBPanel(dst: usize, b: usize, b2: usize, k: i32, n: i32, pc: i32, pe: i32, ext: i32, jc: i32, nc: i32): void {
  const kc = pe - pc + ext;
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const col = jc + jr;
    let d = dst + ((<usize>jr * kc) << 2);
    memory.copy(d, b + ((<usize>(col >> 4) * k + pc) << 6), <usize>(pe - pc) << 6);
    d += <usize>(pe - pc) << 6;
    for (let q = 0; q < ext; q++) {
      const s = b2 + ((<usize>q * n + col) << 2);
      for (let j = 0; j < NR; j++) store<f32>(d + (<usize>j << 2), j < nr ? load<f32>(s + (<usize>j << 2)) : 0);
      d += NR << 2;
    }
  }
}

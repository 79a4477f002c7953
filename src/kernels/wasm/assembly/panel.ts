// Products with a pre-packed b (bit 3 of gemm's transB argument): op(b) [k, n] stored as ⌈n/16⌉ panels of NR = 16
// columns, panel s = k rows of 16 floats (row p = op(b)[p, 16s .. 16s + 15], zero past n), back to back, so
// element (p, j) is at b + ((⌊j/16⌋·k + p)·16 + j mod 16)·4. Every element is summed in the order of gemm.ts's
// header (per KC block from +0 in increasing p, the k2 extension after the last block's k values, then out =
// alpha·acc or out + alpha·acc), so a panel product has exactly the bits of the same product on b unpacked.

import { fma, KC, MR, NR } from "./common";

/** k steps of a slice in panelRows: 32 rows of a panel, 2 KiB (32 cache lines). */
const KS = 32;

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

/**
 * Rows [0, m) of out over [j0, j1) (j0 a multiple of 16) from a packed by gemm.ts's packA for every KC block (block
 * pc at bufA + mp·pc·4, mp = m rounded up to MR) and pre-packed panels of b, k2 = 0. One panel at a time; each of its
 * KC blocks in KS-deep slices, and each slice through every MR-row register tile before the next slice. So the
 * panel is consumed evenly while the arithmetic runs and the hardware prefetcher streams it alongside: running one
 * tile over the whole block (tiles() in gemm.ts) read the panel from memory in the first tile while the arithmetic
 * waited, then computed the other tiles from L1 while memory idled, and a product of 8 rows took the sum of the two
 * times. Between slices a tile's 8 accumulators wait in acc (mp·64 bytes; row i's 16 at acc + 64·i), stored and
 * reloaded exactly, so every element gets the per-block sums and combines of tiles(), bit for bit.
 */
export function panelRows(
  bufA: usize, b: usize, k: i32, m: i32, mp: i32, n: i32, j0: i32, j1: i32, out: usize, alpha: f32, beta: i32,
  acc: usize,
): void {
  const va = f32x4.splat(alpha);
  for (let jc = j0; jc < j1; jc += NR) {
    const nr = min(NR, j1 - jc);
    const pan = b + ((<usize>(jc >> 4) * k) << 6);
    const c0 = out + (<usize>jc << 2);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      const blockA = bufA + ((<usize>mp * pc) << 2);
      for (let ps = 0; ps < kc; ps += KS) {
        const ks = min(KS, kc - ps);
        const pb = pan + (<usize>(pc + ps) << 6);
        // strip of rows ir, ir + 1 at blockA + ir·kc floats; its p-th pair at + 2p floats
        for (let ir = 0; ir < mp; ir += MR) {
          slice(blockA + ((<usize>(ir * kc + ps * MR)) << 2), pb, ks, acc + (<usize>ir << 6), ps == 0);
        }
      }
      const overwrite = pc == 0 && beta == 0;
      for (let i = 0; i < m; i++) {
        const c = c0 + ((<usize>i * n) << 2);
        const row = acc + (<usize>i << 6);
        if (nr == NR) {
          combine(c, f32x4.mul(va, v128.load(row)), overwrite);
          combine(c + 16, f32x4.mul(va, v128.load(row, 16)), overwrite);
          combine(c + 32, f32x4.mul(va, v128.load(row, 32)), overwrite);
          combine(c + 48, f32x4.mul(va, v128.load(row, 48)), overwrite);
        } else {
          // the same two roundings (multiply, then add) per column as the vector lanes
          for (let j = 0; j < nr; j++) {
            const x = alpha * load<f32>(row + (<usize>j << 2));
            const cj = c + (<usize>j << 2);
            store<f32>(cj, overwrite ? x : load<f32>(cj) + x);
          }
        }
      }
    }
  }
}

// ks steps of gemm.ts's 2×16 register tile (micro) from the accumulators at acc (zero when fresh), stored back.
@inline function slice(pa: usize, pb: usize, ks: i32, acc: usize, fresh: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c03 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0), c13 = f32x4.splat(0);
  if (!fresh) {
    c00 = v128.load(acc); c01 = v128.load(acc, 16); c02 = v128.load(acc, 32); c03 = v128.load(acc, 48);
    c10 = v128.load(acc, 64); c11 = v128.load(acc, 80); c12 = v128.load(acc, 96); c13 = v128.load(acc, 112);
  }
  for (let p = 0; p < ks; p++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    const b2 = v128.load(pb, 32);
    const b3 = v128.load(pb, 48);
    let av = v128.load32_splat(pa);
    c00 = fma(av, b0, c00);
    c01 = fma(av, b1, c01);
    c02 = fma(av, b2, c02);
    c03 = fma(av, b3, c03);
    av = v128.load32_splat(pa, 4);
    c10 = fma(av, b0, c10);
    c11 = fma(av, b1, c11);
    c12 = fma(av, b2, c12);
    c13 = fma(av, b3, c13);
    pa += 8;
    pb += 64;
  }
  v128.store(acc, c00); v128.store(acc, c01, 16); v128.store(acc, c02, 32); v128.store(acc, c03, 48);
  v128.store(acc, c10, 64); v128.store(acc, c11, 80); v128.store(acc, c12, 96); v128.store(acc, c13, 112);
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

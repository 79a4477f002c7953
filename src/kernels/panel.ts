// Pre-packed weights ("panels"): the layout the WebAssembly register tiles read, made once when a weight is loaded
// so that products stream it in order and never pack it per call (XNNPACK packs its weights the same way).
// A matrix op(b) [k, n] is stored as ⌈n/16⌉ panels of PANEL = 16 columns; panel s holds k rows of 16 floats,
// row p = op(b)[p, 16s .. 16s + 15] (zero past n), panels back to back:
//   element (p, j) at ((⌊j/16⌋·k + p)·16 + j mod 16)
// Products on a packed b have exactly the bits of the same product on b unpacked (assembly/panel.ts).

/** Columns per panel. */
export const PANEL = 16;

/** Floats a packed [k, n] matrix takes (n rounded up to a multiple of 16). */
export function panelLength(k: number, n: number): number {
  return k * Math.ceil(n / PANEL) * PANEL;
}

/** Index of element (p, j) of op(b) [k, n] in its packed form. */
export function panelIndex(k: number, p: number, j: number): number {
  return ((j >> 4) * k + p) * PANEL + (j & 15);
}

/**
 * Packs op(b) [k, n] into dst (panelLength(k, n) floats; the padding is written as 0). src is op(b) row-major
 * [k, n], or with `transposed` b stored [n, k] (a PyTorch [out, in] weight, op(b) = bᵀ). Returns dst.
 */
export function packPanels<T extends Float32Array | Float64Array>(
  dst: T,
  src: ArrayLike<number>,
  k: number,
  n: number,
  transposed: boolean,
): T {
  const panels = Math.ceil(n / PANEL);
  for (let s = 0; s < panels; s++) {
    const j0 = s * PANEL;
    const w = Math.min(PANEL, n - j0);
    let d = s * k * PANEL;
    for (let p = 0; p < k; p++, d += PANEL) {
      if (transposed) for (let c = 0; c < w; c++) dst[d + c] = src[(j0 + c) * k + p]!;
      else for (let c = 0; c < w; c++) dst[d + c] = src[p * n + j0 + c]!;
      for (let c = w; c < PANEL; c++) dst[d + c] = 0;
    }
  }
  return dst;
}

/** op(b) [k, n] row-major from its packed form (a new array of src's type). */
export function unpackPanels<T extends Float32Array | Float64Array>(src: T, k: number, n: number): T {
  const out = new (src.constructor as { new (len: number): T })(k * n);
  const panels = Math.ceil(n / PANEL);
  for (let s = 0; s < panels; s++) {
    const j0 = s * PANEL;
    const w = Math.min(PANEL, n - j0);
    let d = s * k * PANEL;
    for (let p = 0; p < k; p++, d += PANEL) for (let c = 0; c < w; c++) out[p * n + j0 + c] = src[d + c]!;
  }
  return out;
}

// Round-to-nearest-even encoding of a JS number (an exact float64, so no double rounding) into a small IEEE-style
// binary float: 1 sign bit, `expBits` exponent bits with bias 2^(expBits-1) - 1, `mantBits` stored mantissa bits.
// Used by f16.ts (5, 10) and bf16.ts (8, 7). Overflow rounds to ±Inf; NaN becomes the quiet NaN (sign bit clear).

const POW2_MIN = -160;
const POW2_MAX = 160;
// POW2[k - POW2_MIN] = 2^k for k in [-160, 160]: exact powers of two for scaling without Math.pow per element.
const POW2 = (() => {
  const t = new Float64Array(POW2_MAX - POW2_MIN + 1);
  for (let k = POW2_MIN; k <= POW2_MAX; k++) t[k - POW2_MIN] = 2 ** k;
  return t;
})();

function pow2(k: number): number {
  return POW2[k - POW2_MIN]!;
}

/** Rounds q ≥ 0 to the nearest integer, ties to even. q - floor(q) is exact for q < 2^52. */
function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const d = q - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Encodes x into the bits of a (1, expBits, mantBits) float with round-to-nearest-even. */
export function encodeMinifloat(x: number, expBits: number, mantBits: number): number {
  const bias = (1 << (expBits - 1)) - 1;
  const expMask = ((1 << expBits) - 1) << mantBits;
  const signBit = 1 << (expBits + mantBits);
  if (Number.isNaN(x)) return expMask | (1 << (mantBits - 1));
  const sign = x < 0 || (x === 0 && 1 / x < 0) ? signBit : 0;
  const a = Math.abs(x);
  const minExp = 1 - bias;
  if (a < pow2(minExp)) {
    // Subnormal range: units of 2^(minExp - mantBits). A result of 2^mantBits is exactly the smallest normal's bits.
    return sign | roundHalfEven(a * pow2(mantBits - minExp));
  }
  if (a >= pow2(bias + 1)) return sign | expMask;
  let e = Math.floor(Math.log2(a));
  // Math.log2 may be off by one next to a power of two; fix it with exact comparisons.
  if (pow2(e) > a) e--;
  else if (pow2(e + 1) <= a) e++;
  // q in [2^mantBits, 2^(mantBits+1)); a carry to 2^(mantBits+1) moves into the exponent (and to Inf at the top).
  const q = roundHalfEven(a * pow2(mantBits - e));
  return sign | (((e + bias) << mantBits) + (q - (1 << mantBits)));
}

// Elementwise GPT-2 "gelu_new" in place over float32 x[0 .. n): x ← x / (1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³)
// (= 0.5·x·(1 + tanh u)), four lanes at a time. e^t: t clamped to [−88, 89] (below −88 the result is x; from
// ~88.5 e^t is +Infinity, so the result is ±0 for finite x (true magnitude under 1e−37) and NaN for −Infinity, as
// 0.5·x·(1 + tanh u) gives in float32), t = k·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 in two parts,
// so k·LN2_HI is exact), e^r by its Taylor polynomial to r⁷ (truncation < 3e−9 relative), times 2^k built in the
// exponent bits. Error: a few float32 ulps of the result (tested against float64 in src/kernels/gelu.test.ts).

const C: f32 = 0.7978845608028654; // √(2/π)
const LOG2E: f32 = 1.4426950408889634;
const LN2_HI: f32 = 0.693145751953125; // 12 significant bits: k·LN2_HI is exact for |k| ≤ 2^11
const LN2_LO: f32 = 1.428606765330187e-6;

@inline export function exp4(t: v128): v128 {
  t = f32x4.min(f32x4.max(t, f32x4.splat(-88)), f32x4.splat(89));
  const k = f32x4.nearest(f32x4.mul(t, f32x4.splat(LOG2E)));
  const r = f32x4.sub(f32x4.sub(t, f32x4.mul(k, f32x4.splat(LN2_HI))), f32x4.mul(k, f32x4.splat(LN2_LO)));
  // 1 + r(1 + r/2(1 + r/3(1 + r/4(1 + r/5(1 + r/6(1 + r/7))))))
  let p = f32x4.add(f32x4.splat(1), f32x4.mul(r, f32x4.splat(<f32>(1.0 / 7))));
  p = f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.mul(r, f32x4.splat(<f32>(1.0 / 6))), p));
  p = f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.mul(r, f32x4.splat(<f32>(1.0 / 5))), p));
  p = f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.mul(r, f32x4.splat(<f32>(1.0 / 4))), p));
  p = f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.mul(r, f32x4.splat(<f32>(1.0 / 3))), p));
  p = f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.mul(r, f32x4.splat(<f32>(1.0 / 2))), p));
  p = f32x4.add(f32x4.splat(1), f32x4.mul(r, p));
  // 2^k for k in [−127, 128]: (k + 127) << 23 is a float's bits: 0 (k = −127, flushed to zero), 2^k, or +Infinity (128)
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(k), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

@inline function gelu4(v: v128): v128 {
  const v3 = f32x4.mul(f32x4.mul(v, v), v);
  const u = f32x4.mul(f32x4.splat(C), f32x4.add(v, f32x4.mul(f32x4.splat(0.044715), v3)));
  const e = exp4(f32x4.mul(f32x4.splat(-2), u));
  return f32x4.div(v, f32x4.add(f32x4.splat(1), e));
}

export function geluNew(x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = x + (<usize>i << 2);
    v128.store(p, gelu4(v128.load(p)));
  }
  if (i < n) {
    // the last 1–3 values through the same lanes (a scratch vector), so each element gets the same operations
    const p = x + (<usize>i << 2);
    let v = f32x4.splat(0);
    const t0: f32 = load<f32>(p);
    const t1: f32 = i + 1 < n ? load<f32>(p, 4) : 0;
    const t2: f32 = i + 2 < n ? load<f32>(p, 8) : 0;
    v = f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(v, 0, t0), 1, t1), 2, t2);
    const g = gelu4(v);
    store<f32>(p, f32x4.extract_lane(g, 0));
    if (i + 1 < n) store<f32>(p, f32x4.extract_lane(g, 1), 4);
    if (i + 2 < n) store<f32>(p, f32x4.extract_lane(g, 2), 8);
  }
}

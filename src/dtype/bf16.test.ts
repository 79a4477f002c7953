import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SEED } from "../../test/helpers/seed.js";
import { decodeBf16, decodeBf16Array, encodeBf16, encodeBf16Array, f32BitsToBf16Bits } from "./bf16.js";

/** Independent value formula for bfloat16 bits (float64 arithmetic, exact). */
function bf16Formula(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0) return s * m * 2 ** -133;
  if (e === 255) return m === 0 ? s * Infinity : Number.NaN;
  return s * (1 + m / 128) * 2 ** (e - 127);
}

function same(a: number, b: number): boolean {
  return Number.isNaN(a) ? Number.isNaN(b) : Object.is(a, b);
}

function f32FromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

describe("bf16 decode", () => {
  it("matches the formula for all 65,536 bit patterns", () => {
    let bad = -1;
    for (let h = 0; h < 65536 && bad < 0; h++) if (!same(decodeBf16(h), bf16Formula(h))) bad = h;
    expect(bad).toBe(-1);
  });

  it("decodes arrays as bits << 16 (NaN payloads kept)", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bits = new Uint32Array(decodeBf16Array(all).buffer);
    let bad = -1;
    for (let h = 0; h < 65536 && bad < 0; h++) if (bits[h] !== (h << 16) >>> 0) bad = h;
    expect(bad).toBe(-1);
  });
});

describe("bf16 encode (round to nearest, ties to even)", () => {
  it("round-trips every finite bf16 value and ±Inf", () => {
    let bad = -1;
    for (let h = 0; h < 65536 && bad < 0; h++) {
      if (((h >> 7) & 0xff) === 255 && (h & 0x7f) !== 0) continue;
      if (encodeBf16(bf16Formula(h)) !== h || f32BitsToBf16Bits((h << 16) >>> 0) !== h) bad = h;
    }
    expect(bad).toBe(-1);
  });

  it("rounds every midpoint to the even neighbour", () => {
    let bad = -1;
    for (let h = 0; h < 0x7f7f && bad < 0; h++) {
      const lo = bf16Formula(h);
      const hi = bf16Formula(h + 1);
      const mid = (lo + hi) / 2;
      const nudge = (hi - lo) / 1024;
      const even = (h & 1) === 0 ? h : h + 1;
      if (encodeBf16(mid) !== even || encodeBf16(-mid) !== (even | 0x8000)) bad = h;
      if (encodeBf16(mid - nudge) !== h || encodeBf16(mid + nudge) !== h + 1) bad = h;
    }
    expect(bad).toBe(-1);
  });

  it("handles ties, overflow and subnormals", () => {
    expect(encodeBf16(1 + 2 ** -8)).toBe(0x3f80);
    expect(encodeBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(encodeBf16(3.4028234663852886e38)).toBe(0x7f80); // f32 max rounds up to Inf
    expect(encodeBf16(-1e39)).toBe(0xff80);
    expect(encodeBf16(2 ** -133)).toBe(0x0001);
    expect(encodeBf16(2 ** -134)).toBe(0x0000);
    expect(encodeBf16(-0)).toBe(0x8000);
  });

  it("keeps NaN a NaN, even when rounding the payload would carry into the sign", () => {
    expect(encodeBf16(Number.NaN)).toBe(0x7fc0);
    for (const bits of [0x7fffffff, 0xffffffff, 0x7f800001, 0x7f80ffff, 0xff800001]) {
      const h = f32BitsToBf16Bits(bits);
      expect(Number.isNaN(decodeBf16(h))).toBe(true);
      expect(h & 0x8000).toBe((bits >>> 16) & 0x8000);
      const viaArray = encodeBf16Array(new Float32Array(new Uint32Array([bits]).buffer))[0]!;
      expect(Number.isNaN(decodeBf16(viaArray))).toBe(true);
    }
  });

  it("the float32 bit path agrees with the exact-value encoder", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        const x = f32FromBits(bits);
        if (Number.isNaN(x)) return true;
        return f32BitsToBf16Bits(bits) === encodeBf16(x);
      }),
      { seed: SEED, numRuns: 20000 },
    );
  });

  it("encodes Float32Array and Float64Array inputs alike", () => {
    fc.assert(
      fc.property(fc.float32Array({ noNaN: true, maxLength: 40 }), (xs) => {
        expect([...encodeBf16Array(xs)]).toEqual([...encodeBf16Array(Float64Array.from(xs))]);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("rounds a float64 once (no double rounding through float32)", () => {
    // 1 + 2^-8 + 2^-40 is above the tie between 0x3f80 and 0x3f81; float32 would round it to the tie.
    expect(encodeBf16(1 + 2 ** -8 + 2 ** -40)).toBe(0x3f81);
  });
});

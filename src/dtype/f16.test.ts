import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SEED } from "../../test/helpers/seed.js";
import { decodeF16, decodeF16Array, encodeF16, encodeF16Array, f16BitsToF32Bits, f32BitsToF16Bits } from "./f16.js";

/** Independent value formula for IEEE binary16 bits (float64 arithmetic, exact). */
function f16Formula(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : Number.NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function same(a: number, b: number): boolean {
  return Number.isNaN(a) ? Number.isNaN(b) : Object.is(a, b);
}

describe("f16 decode", () => {
  it("matches the formula for all 65,536 bit patterns", () => {
    let bad = -1;
    for (let h = 0; h < 65536 && bad < 0; h++) if (!same(decodeF16(h), f16Formula(h))) bad = h;
    expect(bad).toBe(-1);
  });

  it("decodes arrays bit-exactly, NaN payloads included", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = decodeF16Array(all);
    const bits = new Uint32Array(out.buffer);
    let bad = -1;
    for (let h = 0; h < 65536 && bad < 0; h++) {
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const expectBits = e === 31 ? (((h & 0x8000) << 16) | 0x7f800000 | (m << 13)) >>> 0 : f16BitsToF32Bits(h);
      if (bits[h] !== expectBits || !same(out[h]!, f16Formula(h))) bad = h;
    }
    expect(bad).toBe(-1);
    expect(bits[0x7e01]).toBe(0x7fc02000);
  });

  it("writes into a given out array and returns it", () => {
    const out = new Float32Array(2);
    expect(decodeF16Array(new Uint16Array([0x3c00, 0xc000]), out)).toBe(out);
    expect([...out]).toEqual([1, -2]);
  });
});

describe("f16 encode (round to nearest, ties to even)", () => {
  it("round-trips every f16 value, ±0 and ±Inf included", () => {
    let bad = -1;
    for (let h = 0; h < 65536 && bad < 0; h++) {
      const e = (h >> 10) & 0x1f;
      if (e === 31 && (h & 0x3ff) !== 0) continue;
      if (encodeF16(f16Formula(h)) !== h) bad = h;
    }
    expect(bad).toBe(-1);
  });

  it("rounds every midpoint to the even neighbour and everything else to the nearest", () => {
    let bad = -1;
    for (let h = 0; h < 0x7bff && bad < 0; h++) {
      for (const sign of [0, 0x8000]) {
        const lo = f16Formula(h | sign);
        const hi = f16Formula((h + 1) | sign);
        const mid = (lo + hi) / 2;
        const nudge = (hi - lo) / 1024;
        const even = (h & 1) === 0 ? h : h + 1;
        if (encodeF16(mid) !== (even | sign)) bad = h;
        if (encodeF16(mid - nudge) !== (h | sign) || encodeF16(mid + nudge) !== ((h + 1) | sign)) bad = h;
      }
    }
    expect(bad).toBe(-1);
  });

  it("overflows to ±Inf at the rounding boundary 65520", () => {
    expect(encodeF16(65504)).toBe(0x7bff);
    expect(encodeF16(65519.99)).toBe(0x7bff);
    expect(encodeF16(65520)).toBe(0x7c00);
    expect(encodeF16(-65520)).toBe(0xfc00);
    expect(encodeF16(1e300)).toBe(0x7c00);
    expect(encodeF16(-Infinity)).toBe(0xfc00);
  });

  it("handles subnormals and signed zero", () => {
    expect(encodeF16(2 ** -24)).toBe(0x0001);
    expect(encodeF16(2 ** -25)).toBe(0x0000); // tie between 0 and 1 → 0 (even)
    expect(encodeF16(1.5 * 2 ** -24)).toBe(0x0002); // tie between 1 and 2 → 2 (even)
    expect(encodeF16(2 ** -25 + 2 ** -40)).toBe(0x0001);
    expect(encodeF16(-(2 ** -26))).toBe(0x8000);
    expect(encodeF16(-0)).toBe(0x8000);
    expect(encodeF16(1e-300)).toBe(0x0000);
    expect(encodeF16(2 ** -14 - 2 ** -30)).toBe(0x0400); // rounds up into the smallest normal
  });

  it("keeps NaN a NaN", () => {
    expect(encodeF16(Number.NaN)).toBe(0x7e00);
    expect(Number.isNaN(decodeF16(encodeF16(Number.NaN)))).toBe(true);
  });

  it("rounds a float64 once, not through float32 (no double rounding)", () => {
    // 1 + 2^-11 + 2^-40 rounds to the f16 tie 1 + 2^-11 in float32 (→ 1.0), but is above it: → 1 + 2^-10.
    expect(encodeF16(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c01);
    expect(encodeF16(Math.fround(1 + 2 ** -11 + 2 ** -40))).toBe(0x3c00);
  });

  it("encodes arrays like the scalar encoder", () => {
    fc.assert(
      fc.property(fc.float32Array({ maxLength: 40 }), (xs) => {
        const out = encodeF16Array(xs);
        expect(out).toBeInstanceOf(Uint16Array);
        expect([...out]).toEqual(Array.from(xs, encodeF16));
        expect([...encodeF16Array(Float64Array.from(xs))]).toEqual([...out]);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it("agrees with Math.f16round where the runtime has it", () => {
    const f16round = (Math as unknown as { f16round?: (x: number) => number }).f16round;
    if (f16round === undefined) return;
    fc.assert(
      fc.property(fc.double(), (x) => same(decodeF16(encodeF16(x)), f16round(x))),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it("the float32 bit path agrees with the exact-value encoder (sweep of every relevant exponent)", () => {
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const lows = [0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x0800, 0x17ff];
    let bad = -1;
    for (let exp = 90; exp <= 145 && bad < 0; exp++) {
      for (let top = 0; top < 1024 && bad < 0; top++) {
        for (const low of lows) {
          for (const sign of [0, 0x80000000]) {
            const bits = (sign | (exp << 23) | (top << 13) | low) >>> 0;
            u32[0] = bits;
            if (f32BitsToF16Bits(bits) !== encodeF16(f32[0]!)) bad = bits;
          }
        }
      }
    }
    expect(bad).toBe(-1);
  });

  it("the float32 bit path agrees on random bit patterns and keeps NaN a NaN", () => {
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        u32[0] = bits;
        const x = f32[0]!;
        const h = f32BitsToF16Bits(bits);
        if (Number.isNaN(x)) return Number.isNaN(decodeF16(h)) && (h & 0x8000) === ((bits >>> 16) & 0x8000);
        return h === encodeF16(x);
      }),
      { seed: SEED, numRuns: 20000 },
    );
    for (const bits of [0x7f800001, 0x7fffffff, 0xff800001, 0x7f802000]) {
      expect(Number.isNaN(decodeF16(f32BitsToF16Bits(bits)))).toBe(true);
    }
  });
});

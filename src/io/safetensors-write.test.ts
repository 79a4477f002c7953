import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { caught } from "../../test/helpers/errors.js";
import { SEED } from "../../test/helpers/seed.js";
import { decodeBf16, encodeBf16 } from "../dtype/bf16.js";
import { decodeF16, encodeF16 } from "../dtype/f16.js";
import { ArgumentError, SafetensorsError, ShapeError } from "../errors.js";
import {
  DTYPE_BITS,
  encodeTensorData,
  parseSafetensors,
  type SafetensorsDtype,
  serializeSafetensors,
  serializeSafetensorsHeader,
  type TensorToWrite,
} from "./safetensors.js";

const headerText = (bytes: Uint8Array) => {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return new TextDecoder().decode(bytes.subarray(8, 8 + n));
};

const f32 = (values: number[], shape = [values.length]): TensorToWrite => ({
  dtype: "F32",
  shape,
  data: new Float32Array(values),
});

describe("serializeSafetensors layout", () => {
  it("writes metadata first, then tensors by alignment (largest first) and name, padded with spaces to 8", () => {
    const bytes = serializeSafetensors(
      {
        b: { dtype: "U8", shape: [1], data: new Uint8Array([7]) },
        a: f32([1]),
        c: { dtype: "F64", shape: [], data: new Float64Array([2]) },
        d: { dtype: "BF16", shape: [1], data: new Float32Array([3]) },
      },
      { format: "pt" },
    );
    const text = headerText(bytes);
    expect(text.trimEnd()).toBe(
      '{"__metadata__":{"format":"pt"},' +
        '"c":{"dtype":"F64","shape":[],"data_offsets":[0,8]},' +
        '"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' +
        '"d":{"dtype":"BF16","shape":[1],"data_offsets":[12,14]},' +
        '"b":{"dtype":"U8","shape":[1],"data_offsets":[14,15]}}',
    );
    expect(text.length % 8).toBe(0);
    expect(/^[^ ]* {0,7}$/.test(text)).toBe(true);
    expect(bytes.length).toBe(8 + text.length + 15);
  });

  it("omits empty metadata and writes an empty file as {} padded", () => {
    expect(headerText(serializeSafetensors({}, {}))).toBe("{}      ");
    expect(serializeSafetensors({}).length).toBe(16);
  });

  it("orders names by code point (UTF-8 byte order), so astral characters sort after U+FFFF", () => {
    const layout = serializeSafetensorsHeader({
      "\u{1F600}": { dtype: "U8", shape: [0] },
      "\uffff": { dtype: "U8", shape: [0] },
      b: { dtype: "U8", shape: [0] },
      B: { dtype: "U8", shape: [0] },
    });
    expect(layout.tensors.map((t) => t.name)).toEqual(["B", "b", "\uffff", "\u{1F600}"]);
  });

  it("streams: header + encodeTensorData in layout order equals serializeSafetensors", () => {
    const tensors = {
      w: f32([1, 2, 3, 4], [2, 2]),
      h: { dtype: "F16" as const, shape: [3], data: new Float32Array([1, 2, 3]) },
    };
    const layout = serializeSafetensorsHeader(
      Object.entries(tensors).map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape }] as const),
      { a: "b" },
    );
    const parts = [layout.header, ...layout.tensors.map((t) => encodeTensorData(tensors[t.name as "w" | "h"], t.name))];
    const joined = new Uint8Array(layout.totalLength);
    let at = 0;
    for (const p of parts) {
      joined.set(p, at);
      at += p.length;
    }
    expect(at).toBe(layout.totalLength);
    expect(joined).toEqual(serializeSafetensors(tensors, { a: "b" }));
  });

  it("encodes F16/BF16 with round-to-nearest-even and keeps raw Uint16Array bits (NaN payloads too)", () => {
    const xs = new Float64Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, -(2 ** -25), 1e-40, Number.NaN]);
    const bytes = serializeSafetensors({
      h: { dtype: "F16", shape: [xs.length], data: xs },
      b: { dtype: "BF16", shape: [xs.length], data: xs },
      raw: { dtype: "F16", shape: [2], data: new Uint16Array([0x7c01, 0xfe7f]) },
      f: { dtype: "F32", shape: [1], data: new Float64Array([0.1]) },
    });
    const p = parseSafetensors(bytes);
    const same = (a: number, b: number) => (Number.isNaN(a) ? Number.isNaN(b) : Object.is(a, b));
    [...p.toFloat32("h")].forEach((v, i) => {
      expect(same(v, decodeF16(encodeF16(xs[i]!)))).toBe(true);
    });
    [...p.toFloat32("b")].forEach((v, i) => {
      expect(same(v, decodeBf16(encodeBf16(xs[i]!)))).toBe(true);
    });
    expect([...new Uint16Array(p.bytes("h").slice().buffer)].slice(0, 4)).toEqual([0x3c00, 0x3c02, 0x7c00, 0x8000]);
    expect([...new Uint16Array(p.bytes("raw").slice().buffer)]).toEqual([0x7c01, 0xfe7f]);
    expect([...p.toFloat32("f")]).toEqual([Math.fround(0.1)]);
  });

  it("accepts integer typed arrays for integer dtypes and Uint8Array bytes for any dtype", () => {
    const bytes = serializeSafetensors([
      ["i", { dtype: "I32", shape: [2], data: new Int32Array([-1, 5]) }],
      ["l", { dtype: "I64", shape: [1], data: new BigInt64Array([-3n]) }],
      ["f8", { dtype: "F8_E4M3", shape: [2], data: new Uint8Array([1, 2]) }],
      ["f4", { dtype: "F4", shape: [4], data: new Uint8Array([0x21, 0x43]) }],
    ]);
    const p = parseSafetensors(bytes);
    expect([...p.toFloat32("i")]).toEqual([-1, 5]);
    expect([...p.toFloat64("l")]).toEqual([-3]);
    expect([...p.bytes("f8")]).toEqual([1, 2]);
    expect([...p.bytes("f4")]).toEqual([0x21, 0x43]);
  });
});

describe("serializeSafetensors errors", () => {
  it("refuses a tensor named __metadata__", () => {
    const err = caught(() => serializeSafetensors({ __metadata__: f32([1]) }));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toBe(
      'serializeSafetensors: a tensor may not be named "__metadata__" (the key is reserved for the metadata map)',
    );
  });

  it("refuses duplicate names, lone surrogates, bad shapes and non-string metadata", () => {
    const dup = caught(() =>
      serializeSafetensors([
        ["a", f32([1])],
        ["a", f32([2])],
      ]),
    );
    expect(dup.code).toBe("invalid_argument");
    expect(dup.message).toBe('serializeSafetensors: tensor name "a" appears twice');
    const lone = caught(() => serializeSafetensors({ "\ud800": f32([1]) }));
    expect(lone.message).toBe(
      'serializeSafetensors: tensor name "\\ud800" contains a lone surrogate and cannot be written as UTF-8',
    );
    const shape = caught(() => serializeSafetensors({ a: f32([1], [-1]) }));
    expect(shape.code).toBe("invalid_argument");
    expect(shape.message).toBe(
      'serializeSafetensors: tensor "a" has shape [-1], expected an array of non-negative integers',
    );
    const meta = caught(() => serializeSafetensors({}, { n: 1 as unknown as string }));
    expect(meta.code).toBe("invalid_argument");
    expect(meta.message).toBe('serializeSafetensors: metadata["n"] is a number, expected a string');
  });

  it("refuses unknown dtypes (unsupported_dtype), odd sub-byte sizes and overflowing shapes", () => {
    const dtype = caught(() =>
      serializeSafetensors({ a: { dtype: "F128" as SafetensorsDtype, shape: [1], data: new Uint8Array(16) } }),
    );
    expect(dtype).toBeInstanceOf(SafetensorsError);
    expect(dtype.code).toBe("unsupported_dtype");
    expect(dtype.message).toBe('serializeSafetensors: tensor "a" has dtype F128, which safetensors does not define');
    const f4 = caught(() => serializeSafetensors({ a: { dtype: "F4", shape: [3], data: new Uint8Array(2) } }));
    expect(f4.code).toBe("misaligned_slice");
    expect(f4.message).toBe('serializeSafetensors: tensor "a" has F4 × [3] = 12 bits, not a whole number of bytes');
    const big = caught(() => serializeSafetensorsHeader({ a: { dtype: "F64", shape: [2 ** 40, 2 ** 20] } }));
    expect(big.code).toBe("validation_overflow");
    expect(big.message).toBe(
      'serializeSafetensorsHeader: tensor "a" has F64 × [1099511627776, 1048576], whose size overflows 2^53',
    );
  });

  it("data_length_mismatch and invalid_argument for data that does not fit, before allocating the file", () => {
    const len = caught(() => serializeSafetensors({ a: f32([1, 2, 3], [2, 2]) }));
    expect(len).toBeInstanceOf(ShapeError);
    expect(len.code).toBe("data_length_mismatch");
    expect(len.message).toBe(
      'serializeSafetensors: tensor "a" data has 3 elements, expected 4 elements for F32 × [2, 2]',
    );
    const bytes = caught(() => serializeSafetensors({ a: { dtype: "I16", shape: [2], data: new Uint8Array(3) } }));
    expect(bytes.message).toBe('serializeSafetensors: tensor "a" data has 3 bytes, expected 4 bytes for I16 × [2]');
    const kind = caught(() => serializeSafetensors({ a: { dtype: "F32", shape: [1], data: new Int32Array(1) } }));
    expect(kind.code).toBe("invalid_argument");
    expect(kind.message).toBe(
      'serializeSafetensors: tensor "a" has dtype F32 but data is a Int32Array; expected Float32Array, Float64Array, Uint8Array (raw bytes)',
    );
    // A 2^40-element claim with tiny data fails on the data check, not on a 4 TB allocation.
    const huge = caught(() => serializeSafetensors({ a: f32([1], [2 ** 40]) }));
    expect(huge.code).toBe("data_length_mismatch");
  });

  it("refuses a header over 100,000,000 bytes (header_too_large), before encoding it", () => {
    const early = caught(() => serializeSafetensorsHeader({}, { big: "x".repeat(100_000_000) }));
    expect(early.code).toBe("header_too_large");
    expect(early.message).toBe(
      "serializeSafetensorsHeader: header would be at least 100000003 bytes, over the limit of 100000000",
    );
    // 50,000,001 two-byte characters: under the early bound, over the limit once counted as UTF-8.
    const exact = caught(() => serializeSafetensorsHeader({}, { b: "\u00e9".repeat(50_000_001) }));
    expect(exact.code).toBe("header_too_large");
    expect(exact.message).toBe(
      "serializeSafetensorsHeader: header would be 100000032 bytes, over the limit of 100000000",
    );
  });
});

// Every dtype with a whole number of bytes per element, and the raw typed array for its bytes.
const BYTE_DTYPES = (Object.keys(DTYPE_BITS) as SafetensorsDtype[]).filter((d) => DTYPE_BITS[d] % 8 === 0);

const tensorArb: fc.Arbitrary<TensorToWrite> = fc
  .tuple(fc.constantFrom(...BYTE_DTYPES, "F4" as const), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }))
  .chain(([dtype, shape]) => {
    let n = shape.reduce((a, b) => a * b, 1);
    if (dtype === "F4" && n % 2 === 1) {
      shape = [...shape, 2];
      n *= 2;
    }
    const nbytes = (n * DTYPE_BITS[dtype]) / 8;
    const raw = fc
      .uint8Array({ minLength: nbytes, maxLength: nbytes })
      .map((data) => ({ dtype, shape, data }) as TensorToWrite);
    if (dtype !== "F32" && dtype !== "F64" && dtype !== "F16" && dtype !== "BF16") return raw;
    const floats = fc
      .array(fc.double(), { minLength: n, maxLength: n })
      .map(
        (xs) =>
          ({ dtype, shape, data: dtype === "F32" ? Float32Array.from(xs) : Float64Array.from(xs) }) as TensorToWrite,
      );
    return fc.oneof(raw, floats);
  });

const nameArb = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.constantFrom("__proto__", "constructor", "a.b", ""),
);

describe("parse(serialize(t)) is bit-exact (property)", () => {
  it("random tensors, names and metadata round-trip, aligned", () => {
    fc.assert(
      fc.property(
        fc.dictionary(nameArb, tensorArb, { maxKeys: 6 }).filter((d) => !Object.hasOwn(d, "__metadata__")),
        fc.dictionary(fc.string({ unit: "grapheme", maxLength: 8 }), fc.string({ unit: "grapheme", maxLength: 8 }), {
          maxKeys: 3,
        }),
        (tensors, metadata) => {
          const bytes = serializeSafetensors(tensors, metadata);
          const p = parseSafetensors(bytes);
          const names = Object.keys(tensors);
          expect(p.names().sort()).toEqual([...names].sort());
          expect(p.metadata).toEqual(Object.keys(metadata).length === 0 ? null : metadata);
          expect(p.header.dataStart % 8).toBe(0);
          for (const name of names) {
            const t = tensors[name]!;
            const info = p.info(name);
            expect(info.dtype).toBe(t.dtype);
            expect(info.shape).toEqual(t.shape);
            expect((p.header.dataStart + info.dataOffsets[0]) % Math.ceil(DTYPE_BITS[t.dtype] / 8)).toBe(0);
            expect(p.bytes(name)).toEqual(encodeTensorData(t, name));
          }
          // Serializing what was read gives the same file again.
          const again = Object.fromEntries(
            p.names().map((n) => [n, { dtype: p.info(n).dtype, shape: p.info(n).shape, data: p.bytes(n) }]),
          );
          expect(serializeSafetensors(again, p.metadata ?? undefined)).toEqual(bytes);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
});

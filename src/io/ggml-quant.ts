// ggml tensor data ⇄ float32 for F32, F16, BF16 and the Q8_0 / Q4_0 block formats, bit-exact to ggml's reference
// code (ggml/src/ggml-quants.c: quantize_row_q8_0_ref, quantize_row_q4_0_ref, dequantize_row_q8_0/_q4_0). Every
// float operation is rounded to float32 (Math.fround) where C rounds it. Little-endian bytes.
//   Q8_0 block (34 bytes, 32 values): f16 d, then 32 × int8 q;          value = q·d,       d = amax/127
//   Q4_0 block (18 bytes, 32 values): f16 d, then 16 bytes of nibbles;   value = (nib−8)·d, d = max/−8
//     byte j holds value j in its low nibble and value j+16 in its high nibble.

import { decodeBf16, f32BitsToBf16Bits } from "../dtype/bf16.js";
import { decodeF16, encodeF16 } from "../dtype/f16.js";
import { ArgumentError, GgufError, ShapeError } from "../errors.js";
import type { GgmlTypeInfo } from "./gguf-types.js";

const QK = 32;
const f32 = Math.fround;

/** roundf: to nearest, halves away from zero (exact for float32 inputs). */
function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

function checkInput(op: string, x: ArrayLike<number>): void {
  if (x === null || typeof x !== "object" || !Number.isSafeInteger(x.length))
    throw new ArgumentError("invalid_argument", `${op}: x is ${describe(x)}, expected an array of numbers`, {
      name: "x",
    });
  if (x.length % QK !== 0)
    throw new ArgumentError(
      "invalid_argument",
      `${op}: input has ${x.length} values, expected a multiple of the block size ${QK}`,
      { length: x.length },
    );
  for (let i = 0; i < x.length; i++)
    if (!Number.isFinite(x[i]!))
      throw new ArgumentError("non_finite", `${op}: value ${i} is ${x[i]}, expected finite values`, { index: i });
}

// A block's scale d must be a finite float16 (|d| ≤ 65504): past that ggml stores Infinity and every value of the
// block dequantizes to ±Infinity or NaN. Refused, naming the block and the largest magnitude the type can hold.
function checkScale(op: string, block: number, d: number, amax: number, per: number): number {
  const h = encodeF16(d);
  if ((h & 0x7c00) === 0x7c00)
    throw new ArgumentError(
      "invalid_value",
      `${op}: block ${block} (values ${block * QK}–${block * QK + QK - 1}) has |x| up to ${amax}, whose scale ${d} is past float16's 65504; expected |x| ≤ ${65504 * per} in every block`,
      { index: block, amax },
    );
  return h;
}

function describe(v: unknown): string {
  return v === null ? "null" : ArrayBuffer.isView(v) ? `a ${v.constructor.name}` : `a ${typeof v}`;
}

// n values of blocks of `size` bytes: n a multiple of 32, bytes holding them, out holding n floats
function checkBlocks(op: string, bytes: unknown, n: unknown, out: unknown, size: number): asserts n is number {
  if (!(bytes instanceof Uint8Array))
    throw new ArgumentError("invalid_argument", `${op}: bytes is ${describe(bytes)}, expected a Uint8Array`, {
      name: "bytes",
    });
  if (!Number.isSafeInteger(n) || (n as number) < 0 || (n as number) % QK !== 0)
    throw new ArgumentError(
      "invalid_argument",
      `${op}: n is ${String(n)}, expected a count of values that is a multiple of the block size ${QK}`,
      { name: "n", value: n },
    );
  const need = ((n as number) / QK) * size;
  if (bytes.length < need)
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: bytes has ${bytes.length} bytes, expected at least ${need} for ${n} values (${size} bytes per ${QK})`,
      { name: "bytes", length: bytes.length, expected: need },
    );
  if (out !== undefined && (!(out instanceof Float32Array) || out.length < (n as number)))
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: out is ${out instanceof Float32Array ? `a Float32Array of ${out.length}` : describe(out)}, expected a Float32Array of at least ${n} values`,
      { name: "out" },
    );
}

/**
 * Q8_0 blocks of float32 values (quantize_row_q8_0_ref).
 * @param x n values, n a multiple of 32, all finite   @returns (n/32)·34 bytes
 * @throws {ArgumentError} "invalid_argument" (length), "non_finite", "invalid_value" (a block past float16's scale)
 */
export function quantizeQ8_0(x: ArrayLike<number>): Uint8Array {
  checkInput("quantizeQ8_0", x);
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 34);
  const view = new DataView(out.buffer);
  for (let i = 0; i < nb; i++) {
    const base = i * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(f32(x[base + j]!)));
    const d = f32(amax / 127);
    const id = d !== 0 ? f32(1 / d) : 0;
    view.setUint16(i * 34, checkScale("quantizeQ8_0", i, d, amax, 127), true);
    for (let j = 0; j < QK; j++) view.setInt8(i * 34 + 2 + j, roundHalfAway(f32(f32(x[base + j]!) * id)));
  }
  return out;
}

/**
 * Q4_0 blocks of float32 values (quantize_row_q4_0_ref): d = max/−8 where max is the first value of largest
 * magnitude, nibble = min(15, trunc(x/d + 8.5)).
 * @param x n values, n a multiple of 32, all finite   @returns (n/32)·18 bytes
 * @throws {ArgumentError} "invalid_argument" (length), "non_finite", "invalid_value" (a block past float16's scale)
 */
export function quantizeQ4_0(x: ArrayLike<number>): Uint8Array {
  checkInput("quantizeQ4_0", x);
  const nb = x.length / QK;
  const out = new Uint8Array(nb * 18);
  const view = new DataView(out.buffer);
  for (let i = 0; i < nb; i++) {
    const base = i * QK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = f32(x[base + j]!);
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f32(max / -8);
    const id = d !== 0 ? f32(1 / d) : 0;
    view.setUint16(i * 18, checkScale("quantizeQ4_0", i, d, amax, 8), true);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = f32(f32(x[base + j]!) * id);
      const x1 = f32(f32(x[base + QK / 2 + j]!) * id);
      const q0 = Math.min(15, Math.trunc(f32(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(f32(x1 + 8.5)));
      out[i * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** float32 values of Q8_0 blocks (dequantize_row_q8_0): q·d. */
export function dequantizeQ8_0(bytes: Uint8Array, n: number, out?: Float32Array): Float32Array {
  checkBlocks("dequantizeQ8_0", bytes, n, out, 34);
  out ??= new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n / QK; i++) {
    const d = decodeF16(view.getUint16(i * 34, true));
    for (let j = 0; j < QK; j++) out[i * QK + j] = view.getInt8(i * 34 + 2 + j) * d;
  }
  return out;
}

/** float32 values of Q4_0 blocks (dequantize_row_q4_0): (nibble − 8)·d. */
export function dequantizeQ4_0(bytes: Uint8Array, n: number, out?: Float32Array): Float32Array {
  checkBlocks("dequantizeQ4_0", bytes, n, out, 18);
  out ??= new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n / QK; i++) {
    const d = decodeF16(view.getUint16(i * 18, true));
    for (let j = 0; j < QK / 2; j++) {
      const b = bytes[i * 18 + 2 + j]!;
      out[i * QK + j] = ((b & 0x0f) - 8) * d;
      out[i * QK + j + QK / 2] = ((b >> 4) - 8) * d;
    }
  }
  return out;
}

/**
 * Decodes a tensor's bytes to float32.
 * @throws {GgufError} "unsupported_dtype" for types other than F32, F16, BF16, Q8_0, Q4_0
 */
export function decodeGgmlTensor(
  type: GgmlTypeInfo,
  bytes: Uint8Array,
  n: number,
  op = "decodeGgmlTensor",
  name = "tensor",
): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (type.name) {
    case "F32":
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    case "F16":
      for (let i = 0; i < n; i++) out[i] = decodeF16(view.getUint16(i * 2, true));
      return out;
    case "BF16":
      for (let i = 0; i < n; i++) out[i] = decodeBf16(view.getUint16(i * 2, true));
      return out;
    case "Q8_0":
      return dequantizeQ8_0(bytes, n, out);
    case "Q4_0":
      return dequantizeQ4_0(bytes, n, out);
    default:
      throw new GgufError(
        "unsupported_dtype",
        `${op}: ${name} is ${type.name}, which lorakit does not decode (F32, F16, BF16, Q8_0 and Q4_0 only)`,
        { name, type: type.name },
      );
  }
}

/** Encodes float32 values as a ggml type (F32, F16, BF16 round to nearest even; Q8_0/Q4_0 as ggml's reference). */
export function encodeGgmlTensor(typeName: "F32" | "F16" | "BF16" | "Q8_0" | "Q4_0", x: Float32Array): Uint8Array {
  if (typeName === "Q8_0") return quantizeQ8_0(x);
  if (typeName === "Q4_0") return quantizeQ4_0(x);
  const width = typeName === "F32" ? 4 : 2;
  const out = new Uint8Array(x.length * width);
  const view = new DataView(out.buffer);
  if (typeName === "F32") for (let i = 0; i < x.length; i++) view.setFloat32(i * 4, x[i]!, true);
  else if (typeName === "F16") for (let i = 0; i < x.length; i++) view.setUint16(i * 2, encodeF16(x[i]!), true);
  else {
    const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
    for (let i = 0; i < x.length; i++) view.setUint16(i * 2, f32BitsToBf16Bits(bits[i]!), true);
  }
  return out;
}

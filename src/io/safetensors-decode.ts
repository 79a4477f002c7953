// Decoding one tensor's raw little-endian bytes into float32/float64. `bytes` may sit at any byte offset of any
// buffer (unaligned files, Node's Buffer pool): typed views are built only at offsets that are a multiple of the
// element size, otherwise the bytes are first copied into a fresh buffer. Results never alias the input.

import { decodeBf16Array } from "../dtype/bf16.js";
import { decodeF16Array } from "../dtype/f16.js";
import { SafetensorsError } from "../errors.js";
import type { SafetensorsDtype } from "./safetensors-header.js";

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Element size in bytes of each decodable dtype.
const DTYPE_BYTES: Readonly<Partial<Record<SafetensorsDtype, number>>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  I32: 4,
  U32: 4,
  I64: 8,
  U64: 8,
};

/** dtypes that toFloat32 / toFloat64 can decode. */
export const DECODABLE_DTYPES: readonly SafetensorsDtype[] = Object.freeze(
  Object.keys(DTYPE_BYTES) as SafetensorsDtype[],
);

type View = ArrayLike<number> | ArrayLike<bigint>;

/** Typed arrays use the host byte order; the format is little-endian, and so is every realistic host. */
function requireLittleEndian(op: string): void {
  if (!LITTLE_ENDIAN) {
    throw new SafetensorsError(
      "unsupported_dtype",
      `${op}: this host is big-endian; lorakit decodes only on little-endian hosts`,
    );
  }
}

/** A fresh, aligned copy of the bytes (TypedArray.prototype.set is a memcpy; .slice() can be far slower). */
function copyBytes(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy.buffer;
}

/** A typed view of `bytes` with element size `size`, copying first when bytes.byteOffset is misaligned. */
function aligned(bytes: Uint8Array, size: number): { buffer: ArrayBufferLike; offset: number; length: number } {
  const length = bytes.length / size;
  if (bytes.byteOffset % size === 0) return { buffer: bytes.buffer, offset: bytes.byteOffset, length };
  // A fresh copy: not bytes.slice(), which on a Node Buffer returns a view of the same memory.
  return { buffer: copyBytes(bytes), offset: 0, length };
}

function numericView(dtype: SafetensorsDtype, bytes: Uint8Array): View | undefined {
  switch (dtype) {
    case "BOOL":
    case "U8":
      return bytes;
    case "I8":
      return new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    case "I16": {
      const a = aligned(bytes, 2);
      return new Int16Array(a.buffer, a.offset, a.length);
    }
    case "U16": {
      const a = aligned(bytes, 2);
      return new Uint16Array(a.buffer, a.offset, a.length);
    }
    case "I32": {
      const a = aligned(bytes, 4);
      return new Int32Array(a.buffer, a.offset, a.length);
    }
    case "U32": {
      const a = aligned(bytes, 4);
      return new Uint32Array(a.buffer, a.offset, a.length);
    }
    case "I64": {
      const a = aligned(bytes, 8);
      return new BigInt64Array(a.buffer, a.offset, a.length);
    }
    case "U64": {
      const a = aligned(bytes, 8);
      return new BigUint64Array(a.buffer, a.offset, a.length);
    }
    default:
      return undefined;
  }
}

/** Options of decodeToFloat32 / decodeToFloat64. */
export interface DecodeOptions {
  /** Tensor name for messages. */
  name?: string;
  /** Operation name for messages. */
  op?: string;
  /** The caller hands `bytes` over (nobody else holds them): an aligned F32/F64 buffer is viewed, not copied. */
  isOwned?: boolean;
}

function unsupported(op: string, name: string, dtype: SafetensorsDtype): SafetensorsError {
  return new SafetensorsError(
    "unsupported_dtype",
    `${op}: tensor ${JSON.stringify(name)} has dtype ${dtype}, which cannot be decoded to numbers (supported: ${DECODABLE_DTYPES.join(", ")}); read its raw bytes instead`,
    { name, dtype },
  );
}

/**
 * Decodes a tensor's bytes into a new Float32Array (F32/F16/BF16 exactly; F64 and 64-bit ints rounded to f32).
 * @throws {SafetensorsError} unsupported_dtype for F8/F6/F4/C64
 */
export function decodeToFloat32(bytes: Uint8Array, dtype: SafetensorsDtype, options: DecodeOptions = {}): Float32Array {
  const { name = "tensor", op = "toFloat32", isOwned = false } = options;
  const size = DTYPE_BYTES[dtype];
  if (size === undefined) throw unsupported(op, name, dtype);
  const n = bytes.length / size;
  requireLittleEndian(op);
  switch (dtype) {
    case "F32":
      // An owned, aligned buffer (a fresh file read) is viewed in place; anything else is copied.
      if (isOwned && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
      return new Float32Array(copyBytes(bytes));
    case "F64": {
      const a = aligned(bytes, 8);
      const out = new Float32Array(a.length);
      out.set(new Float64Array(a.buffer, a.offset, a.length)); // converts natively, rounding to nearest
      return out;
    }
    case "F16": {
      const a = aligned(bytes, 2);
      return decodeF16Array(new Uint16Array(a.buffer, a.offset, a.length));
    }
    case "BF16": {
      const a = aligned(bytes, 2);
      return decodeBf16Array(new Uint16Array(a.buffer, a.offset, a.length));
    }
    default:
      return toNumbers(numericView(dtype, bytes)!, new Float32Array(n)) as Float32Array;
  }
}

/**
 * Decodes a tensor's bytes into a new Float64Array (exact for every float dtype; 64-bit ints beyond 2^53 round).
 * @throws {SafetensorsError} unsupported_dtype for F8/F6/F4/C64
 */
export function decodeToFloat64(bytes: Uint8Array, dtype: SafetensorsDtype, options: DecodeOptions = {}): Float64Array {
  const { name = "tensor", op = "toFloat64" } = options;
  const size = DTYPE_BYTES[dtype];
  if (size === undefined) throw unsupported(op, name, dtype);
  requireLittleEndian(op);
  if (dtype === "F64") {
    if (options.isOwned && bytes.byteOffset % 8 === 0)
      return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
    return new Float64Array(copyBytes(bytes));
  }
  if (dtype === "F32" || dtype === "F16" || dtype === "BF16") {
    const f32 = decodeToFloat32(bytes, dtype, { name, op, isOwned: options.isOwned });
    const out = new Float64Array(f32.length);
    out.set(f32);
    return out;
  }
  return toNumbers(numericView(dtype, bytes)!, new Float64Array(bytes.length / size)) as Float64Array;
}

function toNumbers(src: View, out: Float32Array | Float64Array): Float32Array | Float64Array {
  for (let i = 0; i < out.length; i++) out[i] = Number(src[i]!);
  return out;
}

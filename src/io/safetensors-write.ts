// safetensors writer. Tensors are ordered by dtype alignment (largest first), then by name (Unicode code point
// order, which is UTF-8 byte order), and get contiguous offsets from 0. The header JSON is padded with spaces to a
// multiple of 8 bytes, so the data starts at a multiple of 8 and every tensor sits at a multiple of its element size.
// serializeSafetensorsHeader + encodeTensorData let a caller stream a large file tensor by tensor.

import { encodeBf16Array } from "../dtype/bf16.js";
import { encodeF16Array } from "../dtype/f16.js";
import { ArgumentError, SafetensorsError, ShapeError } from "../errors.js";
import {
  DTYPE_BITS,
  dtypeAlignment,
  isSafetensorsDtype,
  MAX_HEADER_BYTES,
  type SafetensorsDtype,
  type TensorInfo,
} from "./safetensors-header.js";

/** Tensor data to write: numbers for float dtypes, raw bits/bytes for everything else. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigInt64Array
  | BigUint64Array;

/**
 * One tensor to write. Float32Array / Float64Array data is encoded to `dtype` when dtype is F32, F64, F16 or BF16
 * (F16/BF16 round to nearest even). A Uint8Array is always taken as the tensor's raw little-endian bytes. A typed
 * array matching an integer dtype (Int32Array for I32, ...) or a Uint16Array for F16/BF16 is taken as raw values.
 */
export interface TensorToWrite {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: TensorData;
}

/** What the header needs to know about a tensor. */
export interface TensorSpec {
  dtype: SafetensorsDtype;
  shape: readonly number[];
}

/** A computed file layout: write `header`, then each tensor's bytes in `tensors` order. */
export interface SafetensorsLayout {
  /** The first 8 + N bytes of the file: the u64 length and the padded JSON header. */
  header: Uint8Array;
  /** Tensors in write order, with offsets relative to the data start. */
  tensors: TensorInfo[];
  headerLength: number;
  dataStart: number;
  totalLength: number;
}

type Entries<T> = Map<string, T> | Record<string, T> | Iterable<readonly [string, T]>;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function toPairs<T>(entries: Entries<T>, op: string): (readonly [string, T])[] {
  if (entries === null || typeof entries !== "object")
    throw new ArgumentError(
      "invalid_argument",
      `${op}: tensors is ${entries === null ? "null" : `a ${typeof entries}`}, expected a Map, an iterable of [name, tensor] pairs or an object of tensors by name`,
      { name: "tensors" },
    );
  if (entries instanceof Map) return [...entries];
  if (Symbol.iterator in entries) return [...(entries as Iterable<readonly [string, T]>)];
  return Object.entries(entries as Record<string, T>);
}

/** Compares by Unicode code point (= UTF-8 byte order, as the reference's String ordering). */
function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? 1 : -1;
    return ca - cb;
  }
  return a.length - b.length;
}

function byteSize(op: string, name: string, spec: TensorSpec): number {
  if (!isSafetensorsDtype(spec.dtype)) {
    throw new SafetensorsError(
      "unsupported_dtype",
      `${op}: tensor ${JSON.stringify(name)} has dtype ${String(spec.dtype)}, which safetensors does not define`,
      {
        name,
        dtype: spec.dtype,
      },
    );
  }
  const shape = spec.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: tensor ${JSON.stringify(name)} has shape ${JSON.stringify(shape)}, expected an array of non-negative integers`,
      { name },
    );
  }
  let bits = DTYPE_BITS[spec.dtype];
  for (const d of shape) bits *= d;
  if (bits > Number.MAX_SAFE_INTEGER) {
    throw new SafetensorsError(
      "validation_overflow",
      `${op}: tensor ${JSON.stringify(name)} has ${spec.dtype} × [${shape.join(", ")}], whose size overflows 2^53`,
      { name },
    );
  }
  if (bits % 8 !== 0) {
    throw new SafetensorsError(
      "misaligned_slice",
      `${op}: tensor ${JSON.stringify(name)} has ${spec.dtype} × [${shape.join(", ")}] = ${bits} bits, not a whole number of bytes`,
      { name, bits },
    );
  }
  return bits / 8;
}

function checkName(op: string, name: string, seen: Set<string>): void {
  if (typeof name !== "string")
    throw new ArgumentError("invalid_argument", `${op}: tensor name ${String(name)} is not a string`);
  if (name === "__metadata__") {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: a tensor may not be named "__metadata__" (the key is reserved for the metadata map)`,
      { name },
    );
  }
  if (LONE_SURROGATE.test(name)) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: tensor name ${JSON.stringify(name)} contains a lone surrogate and cannot be written as UTF-8`,
      { name },
    );
  }
  if (seen.has(name))
    throw new ArgumentError("invalid_argument", `${op}: tensor name ${JSON.stringify(name)} appears twice`, { name });
  seen.add(name);
}

function metadataJson(op: string, metadata: Record<string, string> | undefined): string | undefined {
  if (metadata === undefined || metadata === null) return undefined;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") {
      throw new ArgumentError(
        "invalid_argument",
        `${op}: metadata[${JSON.stringify(k)}] is a ${typeof v}, expected a string`,
        { key: k },
      );
    }
    if (LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) {
      throw new ArgumentError("invalid_argument", `${op}: metadata[${JSON.stringify(k)}] contains a lone surrogate`, {
        key: k,
      });
    }
    parts.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
  }
  return parts.length === 0 ? undefined : `{${parts.join(",")}}`;
}

/**
 * Computes a file's layout and header bytes from tensor names, dtypes and shapes, so the tensor bytes can then be
 * written one by one (in `tensors` order) without holding the whole file in memory.
 * @param metadata string → string map written as "__metadata__" (omitted when empty)
 * @throws {ArgumentError} invalid_argument for a reserved, duplicate or non-Unicode name, a bad shape or metadata
 * @throws {SafetensorsError} unsupported_dtype, validation_overflow, misaligned_slice, header_too_large
 * @example serializeSafetensorsHeader({ w: { dtype: "F32", shape: [2, 3] } }).totalLength // 8 + N + 24
 */
export function serializeSafetensorsHeader(
  entries: Entries<TensorSpec>,
  metadata?: Record<string, string>,
  op = "serializeSafetensorsHeader",
): SafetensorsLayout {
  const seen = new Set<string>();
  const sized = toPairs(entries, op).map(([name, spec]) => {
    checkName(op, name, seen);
    if (spec === null || typeof spec !== "object")
      throw new ArgumentError(
        "invalid_argument",
        `${op}: tensor ${JSON.stringify(name)} is ${spec === null ? "null" : `a ${typeof spec}`}, expected { dtype, shape, data }`,
        { name },
      );
    return { name, dtype: spec.dtype, shape: [...spec.shape], bytes: byteSize(op, name, spec) };
  });
  sized.sort((a, b) => dtypeAlignment(b.dtype) - dtypeAlignment(a.dtype) || compareNames(a.name, b.name));
  let offset = 0;
  const tensors: TensorInfo[] = sized.map((t) => {
    const info: TensorInfo = { name: t.name, dtype: t.dtype, shape: t.shape, dataOffsets: [offset, offset + t.bytes] };
    offset += t.bytes;
    return info;
  });
  // Each UTF-16 code unit of a name or metadata string is at least one byte of UTF-8 JSON: refuse before stringify.
  let lowerBound = 0;
  for (const t of tensors) lowerBound += t.name.length;
  for (const [k, v] of Object.entries(metadata ?? {})) lowerBound += k.length + (typeof v === "string" ? v.length : 0);
  if (lowerBound > MAX_HEADER_BYTES) throw tooLarge(op, lowerBound, "at least ");
  const parts: string[] = [];
  const meta = metadataJson(op, metadata);
  if (meta !== undefined) parts.push(`"__metadata__":${meta}`);
  for (const t of tensors) {
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${t.dataOffsets[0]},${t.dataOffsets[1]}]}`,
    );
  }
  const text = `{${parts.join(",")}}`;
  const headerLength = Math.ceil(utf8Length(text) / 8) * 8;
  if (headerLength > MAX_HEADER_BYTES) throw tooLarge(op, headerLength, "");
  const json = new TextEncoder().encode(text);
  const header = new Uint8Array(8 + headerLength).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(headerLength), true);
  header.set(json, 8);
  return { header, tensors, headerLength, dataStart: 8 + headerLength, totalLength: 8 + headerLength + offset };
}

function tooLarge(op: string, bytes: number, qualifier: string): SafetensorsError {
  return new SafetensorsError(
    "header_too_large",
    `${op}: header would be ${qualifier}${bytes} bytes, over the limit of ${MAX_HEADER_BYTES}`,
    { headerLength: bytes, limit: MAX_HEADER_BYTES },
  );
}

/** UTF-8 byte length of a well-formed string, without encoding it. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function rawBytes(a: TensorData): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

// The typed array that holds a dtype's raw values (besides Uint8Array, which always means raw bytes).
const RAW_ARRAY: Partial<Record<SafetensorsDtype, { new (n: number): TensorData; name: string }>> = {
  I8: Int8Array,
  I16: Int16Array,
  U16: Uint16Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I32: Int32Array,
  U32: Uint32Array,
  I64: BigInt64Array,
  U64: BigUint64Array,
};

/**
 * Encodes one tensor's data to its little-endian bytes (exactly dtype × shape bytes). The result may share memory
 * with `t.data` when no conversion is needed.
 * @throws {ShapeError} data_length_mismatch when the data does not hold prod(shape) elements
 * @throws {ArgumentError} invalid_argument when the data's array type does not fit the dtype
 */
export function encodeTensorData(t: TensorToWrite, name = "tensor", op = "encodeTensorData"): Uint8Array {
  if (t === null || typeof t !== "object")
    throw new ArgumentError("invalid_argument", `${op}: ${name} is ${String(t)}, expected { dtype, shape, data }`, {
      name,
    });
  const data = t.data;
  if (checkTensorData(t, name, op)) return rawBytes(data);
  const src = data as Float32Array | Float64Array;
  switch (t.dtype) {
    case "F32":
      return rawBytes(src instanceof Float32Array ? src : Float32Array.from(src));
    case "F64":
      return rawBytes(src instanceof Float64Array ? src : Float64Array.from(src));
    case "F16":
      return rawBytes(encodeF16Array(src));
    default:
      return rawBytes(encodeBf16Array(src));
  }
}

/** Validates a tensor's dtype, shape and data; returns true when the data is taken as raw bytes. */
function checkTensorData(t: TensorToWrite, name: string, op: string): boolean {
  const nbytes = byteSize(op, name, t);
  const data = t.data;
  const isFloatData = data instanceof Float32Array || data instanceof Float64Array;
  const q = JSON.stringify(name);
  if (!isFloatData && !ArrayBuffer.isView(data)) {
    throw new ArgumentError("invalid_argument", `${op}: tensor ${q} data is not a typed array`, { name });
  }
  if (!LITTLE_ENDIAN && !(data instanceof Uint8Array)) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: this host is big-endian; pass tensor ${q} as little-endian bytes (Uint8Array)`,
      { name },
    );
  }
  const width = Math.ceil(DTYPE_BITS[t.dtype] / 8);
  const isFloatDtype = t.dtype === "F32" || t.dtype === "F64" || t.dtype === "F16" || t.dtype === "BF16";
  const rawCtor = RAW_ARRAY[t.dtype];
  const raw = data instanceof Uint8Array || (rawCtor !== undefined && data instanceof rawCtor);
  if (!raw && !(isFloatData && isFloatDtype)) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: tensor ${q} has dtype ${t.dtype} but data is a ${data.constructor.name}; expected ${isFloatDtype ? "Float32Array, Float64Array, " : ""}${rawCtor ? `${rawCtor.name} or ` : ""}Uint8Array (raw bytes)`,
      { name, dtype: t.dtype },
    );
  }
  const have = raw ? data.byteLength : data.length * width;
  if (have !== nbytes) {
    const unit = raw ? `${data.byteLength} bytes` : `${data.length} elements`;
    throw new ShapeError(
      "data_length_mismatch",
      `${op}: tensor ${q} data has ${unit}, expected ${raw ? `${nbytes} bytes` : `${nbytes / width} elements`} for ${t.dtype} × [${t.shape.join(", ")}]`,
      { name, dtype: t.dtype, shape: [...t.shape] },
    );
  }
  return raw;
}

/**
 * Serializes tensors (and optional string metadata) into one safetensors file in memory.
 * parseSafetensors(serializeSafetensors(t)) gives back the same bytes for every tensor.
 * @throws {ArgumentError | ShapeError | SafetensorsError} see serializeSafetensorsHeader and encodeTensorData
 * @example serializeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } })
 */
export function serializeSafetensors(tensors: Entries<TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const op = "serializeSafetensors";
  const pairs = toPairs(tensors, op);
  const byName = new Map(pairs);
  const layout = serializeSafetensorsHeader(pairs, metadata, op);
  for (const info of layout.tensors) checkTensorData(byName.get(info.name)!, info.name, op);
  const out = new Uint8Array(layout.totalLength);
  out.set(layout.header, 0);
  for (const info of layout.tensors) {
    out.set(encodeTensorData(byName.get(info.name)!, info.name, op), layout.dataStart + info.dataOffsets[0]);
  }
  return out;
}

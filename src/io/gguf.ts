// GGUF reader: bytes → {metadata, tensor infos, tensor bytes}. Pure and browser-safe (no fs, no fetch).
// Layout (little-endian, ggml/src/gguf.cpp): "GGUF", u32 version (2 or 3), u64 tensor count, u64 key-value count;
// key-values (string key, u32 value type, value; an array is u32 item type, u64 count, items); tensor infos (string
// name, u32 n_dims ≤ 4, n_dims × i64 ne, u32 ggml type, u64 offset); padding to general.alignment (default 32);
// the data section, each tensor at its offset, offsets packed in order with each tensor padded to the alignment.
// Every count and length is checked against the bytes left before anything is allocated for it. The writer is in
// gguf-write.ts, block (de)quantization in ggml-quant.ts.

import { GgufError } from "../errors.js";
import { invalidArgument, requireBytes } from "./format-args.js";
import { decodeGgmlTensor } from "./ggml-quant.js";
import {
  GGUF_SCALAR_BYTES,
  GGUF_VALUE_TYPES,
  type GgmlTypeInfo,
  type GgufHeader,
  type GgufScalarType,
  type GgufTensorInfo,
  type GgufValue,
  ggmlByteLength,
  ggmlTypeById,
} from "./gguf-types.js";

export { type GgufLayout, type GgufTensorToWrite, serializeGguf, serializeGgufHeader } from "./gguf-write.js";

/** The default data alignment (gguf.h GGUF_DEFAULT_ALIGNMENT). */
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME: a tensor name has at most 63 bytes. */
export const GGUF_MAX_NAME_BYTES = 63;
const MAX_DIMS = 4;
// ignoreBOM keeps a leading U+FEFF (llama vocabularies have it as a token); fatal refuses malformed UTF-8
const DECODER = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A parsed GGUF file held in memory. */
export interface ParsedGguf extends GgufHeader {
  names(): string[];
  /** @throws {GgufError} "tensor_not_found"-like lookups use code "missing_tensor" */
  info(name: string): GgufTensorInfo;
  /** The tensor's raw bytes: a view into the input (no copy). */
  bytes(name: string): Uint8Array;
  /** A new Float32Array with the tensor's values (F32/F16/BF16 exact, Q8_0/Q4_0 dequantized as ggml does). */
  toFloat32(name: string): Float32Array;
}

class Cursor {
  pos = 0;
  constructor(
    readonly u8: Uint8Array,
    readonly view: DataView,
    readonly fileSize: number,
    readonly op: string,
  ) {}
  /**
   * Refuses to read past the bytes held. `readMore` in the error's details (the prefix length that would do) is
   * set only when the bytes lie within the file: a streaming reader reads further for that error alone.
   */
  need(n: number, what: string): void {
    const end = this.pos + n;
    if (end <= this.u8.length) return;
    const inFile = end <= this.fileSize;
    throw new GgufError(
      "truncated_file",
      `${this.op}: ${what} needs ${n} bytes at offset ${this.pos}, but the ${inFile ? "bytes read so far end" : "file ends"} at ${inFile ? this.u8.length : this.fileSize}`,
      {
        offset: this.pos,
        need: n,
        available: this.u8.length,
        fileSize: this.fileSize,
        ...(inFile ? { readMore: end } : {}),
      },
    );
  }
  /** Bytes left in the whole file (not only in the prefix held): the budget for counts. */
  left(): number {
    return this.fileSize - this.pos;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 count or length that must fit the bytes left at `minBytes` each. */
  count(what: string, minBytes: number): number {
    const at = this.pos;
    const n = this.u64(what);
    const budget = BigInt(Math.max(0, this.left()));
    if (n * BigInt(minBytes) > budget)
      throw new GgufError(
        "validation_overflow",
        `${this.op}: ${what} is ${n} (at offset ${at}), but ${n} × ${minBytes} bytes exceed the ${budget} bytes left in the file`,
        { offset: at, count: n.toString(), left: Number(budget) },
      );
    return Number(n);
  }
  string(what: string): string {
    const len = this.count(`${what} length`, 1);
    this.need(len, what);
    const at = this.pos;
    this.pos += len;
    try {
      return DECODER.decode(this.u8.subarray(at, at + len));
    } catch {
      throw new GgufError("invalid_metadata", `${this.op}: ${what} at offset ${at} is not valid UTF-8 (${len} bytes)`, {
        offset: at,
      });
    }
  }
}

function valueType(c: Cursor, what: string): GgufScalarType | "array" {
  const at = c.pos;
  const id = c.u32(what);
  const t = GGUF_VALUE_TYPES[id];
  if (t === undefined)
    throw new GgufError(
      "invalid_metadata",
      `${c.op}: ${what} is ${id} at offset ${at}, expected a GGUF value type 0–12 (u8 … f64)`,
      { offset: at, type: id },
    );
  return t;
}

function scalar(c: Cursor, t: GgufScalarType, what: string): number | bigint | boolean | string {
  if (t === "string") return c.string(what);
  const n = GGUF_SCALAR_BYTES[t];
  c.need(n, what);
  const v = c.view;
  const p = c.pos;
  c.pos += n;
  switch (t) {
    case "u8":
      return v.getUint8(p);
    case "i8":
      return v.getInt8(p);
    case "u16":
      return v.getUint16(p, true);
    case "i16":
      return v.getInt16(p, true);
    case "u32":
      return v.getUint32(p, true);
    case "i32":
      return v.getInt32(p, true);
    case "f32":
      return v.getFloat32(p, true);
    case "f64":
      return v.getFloat64(p, true);
    case "u64":
      return v.getBigUint64(p, true);
    case "i64":
      return v.getBigInt64(p, true);
    case "bool": {
      const b = v.getUint8(p);
      if (b > 1)
        throw new GgufError(
          "invalid_metadata",
          `${c.op}: ${what} is a bool stored as ${b} at offset ${p}, expected 0 or 1`,
          {
            offset: p,
          },
        );
      return b === 1;
    }
  }
}

function readValue(c: Cursor, key: string): GgufValue {
  const t = valueType(c, `type of "${key}"`);
  if (t !== "array") return { type: t, value: scalar(c, t, `value of "${key}"`) } as GgufValue;
  const item = valueType(c, `item type of array "${key}"`);
  if (item === "array")
    throw new GgufError(
      "invalid_metadata",
      `${c.op}: "${key}" is an array of arrays, which llama.cpp's gguf.cpp does not read either`,
      { key },
    );
  const n = c.count(`length of array "${key}"`, item === "string" ? 8 : GGUF_SCALAR_BYTES[item]);
  const out: (number | bigint | boolean | string)[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = scalar(c, item, `item ${i} of "${key}"`);
  return { type: "array", itemType: item, value: out };
}

function readVersion(c: Cursor): number {
  c.need(8, "magic and version");
  const magic = String.fromCharCode(c.u8[0]!, c.u8[1]!, c.u8[2]!, c.u8[3]!);
  if (magic !== "GGUF")
    throw new GgufError(
      "invalid_magic",
      `${c.op}: the file starts with ${JSON.stringify(magic)}, expected "GGUF" (not a GGUF file)`,
      { magic },
    );
  c.pos = 4;
  const version = c.u32("version");
  if (version === 2 || version === 3) return version;
  const swapped = version > 0xffff ? " (a big-endian file? lorakit reads little-endian GGUF only)" : "";
  const old = version === 1 ? " (GGUF v1 is no longer supported by llama.cpp either)" : "";
  throw new GgufError("unsupported_version", `${c.op}: GGUF version ${version}, expected 2 or 3${old}${swapped}`, {
    version,
  });
}

function readAlignment(c: Cursor, metadata: Map<string, GgufValue>): number {
  const v = metadata.get("general.alignment");
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (v.type !== "u32" || v.value === 0 || (v.value & (v.value - 1)) !== 0)
    throw new GgufError(
      "invalid_alignment",
      `${c.op}: general.alignment is ${v.type} ${String(v.value)}, expected a u32 power of two`,
      { type: v.type, value: String(v.value) },
    );
  return v.value;
}

function readTensorInfo(c: Cursor, seen: Set<string>): Omit<GgufTensorInfo, "byteLength"> & { elements: number } {
  const name = c.string("tensor name");
  const nameBytes = new TextEncoder().encode(name).length;
  if (nameBytes > GGUF_MAX_NAME_BYTES)
    throw new GgufError(
      "tensor_invalid_info",
      `${c.op}: tensor name "${name.slice(0, 80)}" has ${nameBytes} bytes, expected at most ${GGUF_MAX_NAME_BYTES} (GGML_MAX_NAME)`,
      { name },
    );
  if (seen.has(name)) throw new GgufError("duplicate_name", `${c.op}: tensor "${name}" appears twice`, { name });
  seen.add(name);
  const nDims = c.u32(`n_dims of "${name}"`);
  if (nDims > MAX_DIMS)
    throw new GgufError("tensor_invalid_info", `${c.op}: tensor "${name}" has ${nDims} dims, expected at most 4`, {
      name,
      nDims,
    });
  const shape: number[] = [];
  let elements = 1;
  for (let j = 0; j < nDims; j++) {
    const ne = c.i64(`ne[${j}] of "${name}"`);
    if (ne < 0n || ne > BigInt(Number.MAX_SAFE_INTEGER))
      throw new GgufError(
        "tensor_invalid_info",
        `${c.op}: tensor "${name}" has ne[${j}] = ${ne}, expected 0 ≤ ne ≤ 2^53 − 1`,
        { name, dim: j, ne: ne.toString() },
      );
    shape.push(Number(ne));
    elements *= Number(ne);
  }
  if (!Number.isSafeInteger(elements))
    throw new GgufError(
      "validation_overflow",
      `${c.op}: tensor "${name}" has shape [${shape.join(", ")}], whose element count exceeds 2^53 − 1`,
      { name, shape },
    );
  const at = c.pos;
  const typeId = c.u32(`type of "${name}"`);
  const type = ggmlTypeById(typeId);
  if (type === undefined)
    throw new GgufError(
      "unsupported_dtype",
      `${c.op}: tensor "${name}" has ggml type ${typeId} at offset ${at}, which ggml does not define (or has removed)`,
      { name, type: typeId },
    );
  if ((shape[0] ?? 1) % type.blockSize !== 0)
    throw new GgufError(
      "tensor_invalid_info",
      `${c.op}: tensor "${name}" is ${type.name} with ne[0] = ${shape[0] ?? 1}, expected a multiple of its block size ${type.blockSize}`,
      { name, type: type.name, shape },
    );
  const offset = c.u64(`offset of "${name}"`);
  return { name, shape, type, offset: Number(offset), elements };
}

/**
 * Parses a GGUF header. `bytes` may hold only a prefix of the file (streaming readers pass what they have read and
 * the file's size); a header that does not fit in it throws "truncated_file" and the caller reads more.
 * @throws {GgufError} invalid_magic, unsupported_version, truncated_file, validation_overflow, invalid_metadata,
 *   duplicate_name, invalid_alignment, tensor_invalid_info, unsupported_dtype, invalid_offset
 */
export function parseGgufHeader(bytes: Uint8Array, fileSize: number, op = "parseGgufHeader"): GgufHeader {
  requireBytes(op, "bytes", bytes, "the file's first bytes");
  if (typeof fileSize !== "number" || !Number.isSafeInteger(fileSize) || fileSize < 0)
    throw invalidArgument(op, "fileSize", fileSize, "an integer ≥ 0 (the file's size in bytes)");
  const c = new Cursor(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), fileSize, op);
  const version = readVersion(c);
  // each tensor info takes at least 8 (name length) + 4 + 4 + 8 bytes; each key-value at least 8 + 1 + 4 + 1
  const nTensors = c.count("tensor count", 24);
  const nKv = c.count("key-value count", 14);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`key ${i}`);
    if (key.length === 0) throw new GgufError("invalid_metadata", `${op}: key ${i} is empty`, { index: i });
    if (metadata.has(key)) throw new GgufError("duplicate_name", `${op}: key "${key}" appears twice`, { key });
    metadata.set(key, readValue(c, key));
  }
  const alignment = readAlignment(c, metadata);
  const seen = new Set<string>();
  const raw = [];
  for (let i = 0; i < nTensors; i++) raw.push(readTensorInfo(c, seen));
  const dataStart = nTensors > 0 ? Math.ceil(c.pos / alignment) * alignment : c.pos;
  const tensors: GgufTensorInfo[] = [];
  let expected = 0;
  for (const t of raw) {
    if (t.offset !== expected)
      throw new GgufError(
        "invalid_offset",
        `${op}: tensor "${t.name}" has offset ${t.offset}, expected ${expected} (tensors are packed in order, each padded to ${alignment} bytes)`,
        { name: t.name, offset: t.offset, expected },
      );
    const byteLength = ggmlByteLength(t.type, t.elements);
    expected += Math.ceil(byteLength / alignment) * alignment;
    if (dataStart + t.offset + byteLength > fileSize)
      throw new GgufError(
        "truncated_file",
        `${op}: tensor "${t.name}" (${t.type.name} [${t.shape.join(", ")}], ${byteLength} bytes at ${dataStart + t.offset}) ends past the end of the file (${fileSize} bytes)`,
        { name: t.name, end: dataStart + t.offset + byteLength, fileSize },
      );
    tensors.push({ name: t.name, shape: t.shape, type: t.type, offset: t.offset, byteLength });
  }
  return { version, metadata, tensors, alignment, dataStart };
}

/** Number of elements of a tensor. */
export function ggufElements(t: { shape: readonly number[] }): number {
  if (t === null || typeof t !== "object" || !Array.isArray(t.shape))
    throw invalidArgument("ggufElements", "t", t, "a tensor { shape: number[] }");
  let n = 1;
  for (const d of t.shape) n *= d;
  return n;
}

/** Looks a tensor up by name in a parsed header; a missing name is `missing_tensor`. Shared by parseGguf and openGguf. */
export function ggufTensorLookup(header: GgufHeader, op: string): (name: string) => GgufTensorInfo {
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  return (name) => {
    const t = byName.get(name);
    if (t === undefined)
      throw new GgufError("missing_tensor", `${op}: no tensor named ${JSON.stringify(name)} among ${byName.size}`, {
        name,
      });
    return t;
  };
}

/**
 * Parses a whole GGUF file held in memory, validating header and extents first. Data is not copied until asked for.
 * @throws {GgufError} see parseGgufHeader; "missing_tensor" for an unknown name
 * @example parseGguf(bytes).toFloat32("blk.0.attn_q.weight.lora_a")
 */
export function parseGguf(bytes: Uint8Array | ArrayBuffer): ParsedGguf {
  const op = "parseGguf";
  const u8 = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  if (!(u8 instanceof Uint8Array))
    throw invalidArgument(op, "bytes", bytes, "a Uint8Array or an ArrayBuffer (a GGUF file's bytes)");
  const header = parseGgufHeader(u8, u8.length, op);
  const info = ggufTensorLookup(header, op);
  const bytesOf = (name: string): Uint8Array => {
    const t = info(name);
    return u8.subarray(header.dataStart + t.offset, header.dataStart + t.offset + t.byteLength);
  };
  return {
    ...header,
    names: () => header.tensors.map((t) => t.name),
    info,
    bytes: bytesOf,
    toFloat32: (name) => decodeGgmlTensor(info(name).type, bytesOf(name), ggufElements(info(name)), op, name),
  };
}

/** A metadata value of an expected type, or an "invalid_metadata" error naming the key. */
export function ggufRequire<T extends GgufValue["type"]>(
  metadata: Map<string, GgufValue>,
  key: string,
  types: readonly T[],
  op: string,
): GgufValue & { type: T } {
  const v = metadata.get(key);
  if (v === undefined || !types.includes(v.type as T))
    throw new GgufError(
      "invalid_metadata",
      `${op}: metadata "${key}" is ${v === undefined ? "missing" : `${v.type} ${String(v.value)}`}, expected ${types.join(" or ")}`,
      { key },
    );
  return v as GgufValue & { type: T };
}

export type { GgmlTypeInfo };

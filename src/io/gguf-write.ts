// GGUF v3 writer, the inverse of gguf.ts: header (magic, version 3, counts, key-values, tensor infos) padded to the
// alignment, then each tensor's bytes padded to the alignment, in the order given (as gguf.cpp writes them).
// serializeGgufHeader computes the layout without the data, so lorakit/node can stream tensors to disk.

import { GgufError } from "../errors.js";
import { invalidArgument, shown } from "./format-args.js";
import {
  GGUF_SCALAR_BYTES,
  GGUF_VALUE_TYPES,
  type GgmlTypeInfo,
  type GgufScalarType,
  type GgufValue,
  ggmlByteLength,
  ggmlTypeByName,
} from "./gguf-types.js";

/** A tensor to write: ggml-order shape, type name or info, and (for serializeGguf) its encoded bytes. */
export interface GgufTensorToWrite {
  name: string;
  shape: readonly number[];
  type: string | GgmlTypeInfo;
  data?: Uint8Array;
}

/** Header bytes and where each tensor's data goes. */
export interface GgufLayout {
  header: Uint8Array;
  alignment: number;
  /** Offsets from the start of the data section, and byte lengths, in tensor order. */
  tensors: { name: string; offset: number; byteLength: number }[];
  /** Total file size: header + every padded tensor. */
  totalBytes: number;
}

const OP = "serializeGguf";
const ENCODER = new TextEncoder();
const INT_RANGE: Partial<Record<GgufScalarType, [number, number]>> = {
  u8: [0, 255],
  i8: [-128, 127],
  u16: [0, 65535],
  i16: [-32768, 32767],
  u32: [0, 4294967295],
  i32: [-2147483648, 2147483647],
};

class Out {
  parts: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  num(bytes: number, set: (v: DataView) => void): void {
    const b = new Uint8Array(bytes);
    set(new DataView(b.buffer));
    this.push(b);
  }
  u32(v: number): void {
    this.num(4, (d) => d.setUint32(0, v, true));
  }
  u64(v: number | bigint): void {
    this.num(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  string(s: string): void {
    const b = ENCODER.encode(s);
    this.u64(b.length);
    this.push(b);
  }
  concat(total = this.length): Uint8Array {
    const out = new Uint8Array(total);
    let p = 0;
    for (const b of this.parts) {
      out.set(b, p);
      p += b.length;
    }
    return out;
  }
}

function badValue(key: string, t: string, v: unknown, expected: string): GgufError {
  return new GgufError("invalid_metadata", `${OP}: metadata "${key}" is ${t} ${String(v)}, expected ${expected}`, {
    key,
  });
}

function writeScalar(o: Out, key: string, t: GgufScalarType, v: unknown): void {
  const range = INT_RANGE[t];
  if (range !== undefined) {
    if (typeof v !== "number" || !Number.isInteger(v) || v < range[0] || v > range[1])
      throw badValue(key, t, v, `an integer in [${range[0]}, ${range[1]}]`);
  }
  switch (t) {
    case "string":
      if (typeof v !== "string") throw badValue(key, t, v, "a string");
      o.string(v);
      return;
    case "bool":
      if (typeof v !== "boolean") throw badValue(key, t, v, "a boolean");
      o.num(1, (d) => d.setUint8(0, v ? 1 : 0));
      return;
    case "f32":
    case "f64":
      if (typeof v !== "number") throw badValue(key, t, v, "a number");
      o.num(GGUF_SCALAR_BYTES[t], (d) => (t === "f32" ? d.setFloat32(0, v, true) : d.setFloat64(0, v, true)));
      return;
    case "u64":
    case "i64": {
      const lo = t === "u64" ? 0n : -(2n ** 63n);
      const hi = t === "u64" ? 2n ** 64n - 1n : 2n ** 63n - 1n;
      if (typeof v !== "bigint" || v < lo || v > hi) throw badValue(key, t, v, `a bigint in [${lo}, ${hi}]`);
      o.num(8, (d) => (t === "u64" ? d.setBigUint64(0, v, true) : d.setBigInt64(0, v, true)));
      return;
    }
    default:
      o.num(GGUF_SCALAR_BYTES[t], (d) => {
        const n = v as number;
        if (t === "u8") d.setUint8(0, n);
        else if (t === "i8") d.setInt8(0, n);
        else if (t === "u16") d.setUint16(0, n, true);
        else if (t === "i16") d.setInt16(0, n, true);
        else if (t === "u32") d.setUint32(0, n, true);
        else d.setInt32(0, n, true);
      });
  }
}

function writeValue(o: Out, key: string, v: GgufValue): void {
  if (v === null || typeof v !== "object" || !GGUF_VALUE_TYPES.includes(v.type))
    throw new GgufError(
      "invalid_metadata",
      `${OP}: metadata "${key}" is ${shown(v)}${v !== null && typeof v === "object" ? ` of type ${shown(v.type)}` : ""}, expected { type, value } with type one of ${GGUF_VALUE_TYPES.join(", ")}`,
      { key },
    );
  if (v.type === "array" && !Array.isArray(v.value))
    throw badValue(key, "array", shown(v.value), "a JavaScript array of the items");
  o.u32(GGUF_VALUE_TYPES.indexOf(v.type));
  if (v.type !== "array") {
    writeScalar(o, key, v.type, v.value);
    return;
  }
  if (!GGUF_VALUE_TYPES.includes(v.itemType) || (v.itemType as string) === "array")
    throw badValue(key, "array of", v.itemType, "an array of a scalar type (u8 … f64, string)");
  o.u32(GGUF_VALUE_TYPES.indexOf(v.itemType));
  o.u64(v.value.length);
  for (const item of v.value) writeScalar(o, key, v.itemType, item);
}

function resolveType(t: GgufTensorToWrite): GgmlTypeInfo {
  // an info object is looked up by its name, so one that is not ggml's (a bad id or block size) is not written
  const info =
    typeof t.type === "string"
      ? ggmlTypeByName(t.type)
      : typeof t.type?.name === "string"
        ? ggmlTypeByName(t.type.name)
        : undefined;
  if (info === undefined)
    throw new GgufError("unsupported_dtype", `${OP}: tensor "${t.name}" has type ${shown(t.type)}, not a ggml type`, {
      name: t.name,
    });
  return info;
}

/**
 * The header bytes and data layout of a GGUF v3 file. The alignment is general.alignment when the metadata has
 * it (a u32 power of two), else 32.
 * @throws {GgufError} invalid_metadata, invalid_alignment, duplicate_name, tensor_invalid_info, unsupported_dtype
 */
export function serializeGgufHeader(
  metadata: ReadonlyMap<string, GgufValue> | Record<string, GgufValue>,
  tensors: readonly GgufTensorToWrite[],
): GgufLayout {
  if (!(metadata instanceof Map) && (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)))
    throw invalidArgument(OP, "metadata", metadata, "a Map or an object of key → { type, value }");
  if (!Array.isArray(tensors as unknown))
    throw invalidArgument(OP, "tensors", tensors, "an array of { name, shape, type, data }");
  const entries = metadata instanceof Map ? [...metadata] : Object.entries(metadata);
  const al = entries.find(([k]) => k === "general.alignment")?.[1];
  if (al !== undefined && (al.type !== "u32" || al.value === 0 || (al.value & (al.value - 1)) !== 0))
    throw new GgufError(
      "invalid_alignment",
      `${OP}: general.alignment is ${al.type} ${String(al.value)}, expected a u32 power of two`,
    );
  const alignment = al === undefined ? 32 : (al.value as number);
  const o = new Out();
  o.push(ENCODER.encode("GGUF"));
  o.u32(3);
  o.u64(tensors.length);
  o.u64(entries.length);
  const keys = new Set<string>();
  for (const [k, v] of entries) {
    if (k.length === 0) throw new GgufError("invalid_metadata", `${OP}: a metadata key is empty`);
    if (keys.has(k)) throw new GgufError("duplicate_name", `${OP}: key "${k}" appears twice`, { key: k });
    keys.add(k);
    o.string(k);
    writeValue(o, k, v);
  }
  const names = new Set<string>();
  const layout: GgufLayout["tensors"] = [];
  let offset = 0;
  tensors.forEach((t, i) => {
    if (t === null || typeof t !== "object" || typeof t.name !== "string" || !Array.isArray(t.shape as unknown))
      throw invalidArgument(OP, `tensors[${i}]`, t, "{ name: string, shape: number[], type, data }");
  });
  for (const t of tensors) {
    const type = resolveType(t);
    if (ENCODER.encode(t.name).length > 63 || t.name.length === 0)
      throw new GgufError(
        "tensor_invalid_info",
        `${OP}: tensor name "${t.name}" must have 1–63 bytes (GGML_MAX_NAME)`,
        {
          name: t.name,
        },
      );
    if (names.has(t.name))
      throw new GgufError("duplicate_name", `${OP}: tensor "${t.name}" appears twice`, { name: t.name });
    names.add(t.name);
    if (
      t.shape.length > 4 ||
      t.shape.some((d) => !Number.isSafeInteger(d) || d < 0) ||
      (t.shape[0] ?? 1) % type.blockSize !== 0
    )
      throw new GgufError(
        "tensor_invalid_info",
        `${OP}: tensor "${t.name}" has shape [${t.shape.map((d) => (typeof d === "number" ? d : shown(d))).join(", ")}], expected at most 4 non-negative dims with ne[0] a multiple of ${type.blockSize} (${type.name})`,
        { name: t.name, shape: [...t.shape] },
      );
    const byteLength = ggmlByteLength(
      type,
      t.shape.reduce((a, b) => a * b, 1),
    );
    o.string(t.name);
    o.u32(t.shape.length);
    for (const d of t.shape) o.u64(d);
    o.u32(type.id);
    o.u64(offset);
    layout.push({ name: t.name, offset, byteLength });
    offset += Math.ceil(byteLength / alignment) * alignment;
  }
  const headerBytes = tensors.length > 0 ? Math.ceil(o.length / alignment) * alignment : o.length;
  return { header: o.concat(headerBytes), alignment, tensors: layout, totalBytes: headerBytes + offset };
}

/**
 * Serializes metadata and tensors into one GGUF v3 file.
 * @param tensors each with `data`: exactly the bytes its type and shape need
 * @throws {GgufError} see serializeGgufHeader; "tensor_invalid_info" when a data length is wrong
 * @example serializeGguf({ "general.architecture": { type: "string", value: "llama" } }, [])
 */
export function serializeGguf(
  metadata: ReadonlyMap<string, GgufValue> | Record<string, GgufValue>,
  tensors: readonly GgufTensorToWrite[],
): Uint8Array {
  const layout = serializeGgufHeader(metadata, tensors);
  const out = new Uint8Array(layout.totalBytes);
  out.set(layout.header, 0);
  const start = layout.header.length;
  tensors.forEach((t, i) => {
    const { offset, byteLength } = layout.tensors[i]!;
    if (t.data !== undefined && !(t.data instanceof Uint8Array))
      throw invalidArgument(OP, `tensor "${t.name}" data`, t.data, "a Uint8Array (the encoded bytes)");
    if (t.data === undefined || t.data.length !== byteLength)
      throw new GgufError(
        "tensor_invalid_info",
        `${OP}: tensor "${t.name}" has ${t.data?.length ?? 0} data bytes, expected ${byteLength} for its type and shape [${t.shape.join(", ")}]`,
        { name: t.name, expected: byteLength },
      );
    out.set(t.data, start + offset);
  });
  return out;
}

// safetensors reader: bytes ⇄ {name → tensor}. Pure and browser-safe (no fs, no fetch). The header rules are in
// safetensors-header.ts, decoding in safetensors-decode.ts, the writer in safetensors-write.ts.
// Views returned by bytes() alias the input; toFloat32 / toFloat64 always return fresh arrays.

import { ArgumentError, SafetensorsError } from "../errors.js";
import { decodeToFloat32, decodeToFloat64 } from "./safetensors-decode.js";
import { parseSafetensorsHeader, type SafetensorsHeader, type TensorInfo } from "./safetensors-header.js";

// The f16/bf16 conversions are public through this module (the package entry re-exports io/ only).
export { decodeBf16, decodeBf16Array, encodeBf16, encodeBf16Array } from "../dtype/bf16.js";
export { decodeF16, decodeF16Array, encodeF16, encodeF16Array } from "../dtype/f16.js";
export { DECODABLE_DTYPES, type DecodeOptions, decodeToFloat32, decodeToFloat64 } from "./safetensors-decode.js";
export {
  DTYPE_BITS,
  dtypeAlignment,
  isSafetensorsDtype,
  MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  readSafetensorsHeaderLength,
  type SafetensorsDtype,
  type SafetensorsHeader,
  type TensorInfo,
} from "./safetensors-header.js";
export {
  encodeTensorData,
  type SafetensorsLayout,
  serializeSafetensors,
  serializeSafetensorsHeader,
  type TensorData,
  type TensorSpec,
  type TensorToWrite,
} from "./safetensors-write.js";

/** A parsed, validated safetensors file over the caller's bytes. */
export interface ParsedSafetensors {
  header: SafetensorsHeader;
  /** The metadata map, or null when the file has none. */
  metadata: Record<string, string> | null;
  /** Tensor names in data order. */
  names(): string[];
  has(name: string): boolean;
  /** @throws {SafetensorsError} tensor_not_found */
  info(name: string): TensorInfo;
  /** The tensor's raw little-endian bytes: a view into the input (no copy). */
  bytes(name: string): Uint8Array;
  /** A new Float32Array with the tensor's values (F32/F16/BF16 exact; F64 and ints rounded). */
  toFloat32(name: string): Float32Array;
  /** A new Float64Array with the tensor's values (exact for every float dtype). */
  toFloat64(name: string): Float64Array;
}

/** Throws tensor_not_found with the closest names as a hint. */
export function tensorNotFound(op: string, name: string, known: Iterable<string>): SafetensorsError {
  const all = [...known];
  const tail = name.split(".").slice(-2).join(".");
  const similar = all.filter((k) => k.endsWith(tail)).slice(0, 3);
  const hint = similar.length > 0 ? `; similar: ${similar.map((s) => JSON.stringify(s)).join(", ")}` : "";
  return new SafetensorsError(
    "tensor_not_found",
    `${op}: no tensor named ${JSON.stringify(name)} among ${all.length} tensors${hint}`,
    { name, count: all.length },
  );
}

/**
 * Parses a whole safetensors file held in memory, validating every rule of the reference parser first.
 * Tensor data is not copied or decoded until asked for.
 * @param bytes the whole file (a Node Buffer works: its byteOffset is honoured)
 * @throws {SafetensorsError} header_too_small, header_too_large, invalid_header_length, invalid_header,
 *   invalid_header_deserialization, invalid_offset, validation_overflow, misaligned_slice, tensor_invalid_info,
 *   metadata_incomplete_buffer
 * @example parseSafetensors(bytes).toFloat32("base_model.model.h.0.attn.c_attn.lora_B.weight")
 */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer): ParsedSafetensors {
  const op = "parseSafetensors";
  const u8 = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  if (!(u8 instanceof Uint8Array)) {
    throw new ArgumentError("invalid_argument", `${op}: expected a Uint8Array or ArrayBuffer, got ${typeof bytes}`);
  }
  const header = parseSafetensorsHeader(u8, u8.length, op);
  const get = (name: string, where: string): TensorInfo => {
    const t = header.tensors.get(name);
    if (t === undefined) throw tensorNotFound(where, name, header.tensors.keys());
    return t;
  };
  const slice = (t: TensorInfo): Uint8Array =>
    u8.subarray(header.dataStart + t.dataOffsets[0], header.dataStart + t.dataOffsets[1]);
  return {
    header,
    metadata: header.metadata,
    names: () => [...header.tensors.keys()],
    has: (name) => header.tensors.has(name),
    info: (name) => get(name, "info"),
    bytes: (name) => slice(get(name, "bytes")),
    toFloat32: (name) => {
      const t = get(name, "toFloat32");
      return decodeToFloat32(slice(t), t.dtype, { name });
    },
    toFloat64: (name) => {
      const t = get(name, "toFloat64");
      return decodeToFloat64(slice(t), t.dtype, { name });
    },
  };
}

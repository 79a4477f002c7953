// safetensors header: layout and validation (docs/safetensors.md, rules 1–10 of the reference crate, in order).
// File layout: bytes [0, 8) = N as u64 little-endian; [8, 8+N) = UTF-8 JSON header; [8+N, end) = tensor data,
// little-endian, row-major. data_offsets are relative to the data start 8+N, END exclusive.
// Nothing here allocates from header values: only the Map of entries parsed from the (bounded) header text.

import { ArgumentError, SafetensorsError } from "../errors.js";
import { badHeader, describeValue, type FieldValue, hasLoneSurrogate, JsonCursor } from "./safetensors-json.js";

/** Every dtype name the reference crate knows, case-sensitive. */
export type SafetensorsDtype =
  | "BOOL"
  | "F4"
  | "F6_E2M3"
  | "F6_E3M2"
  | "U8"
  | "I8"
  | "F8_E5M2"
  | "F8_E4M3"
  | "F8_E8M0"
  | "F8_E4M3FNUZ"
  | "F8_E5M2FNUZ"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "I64"
  | "U64"
  | "F64"
  | "C64";

/** Bits per element of each dtype. */
export const DTYPE_BITS: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  I64: 64,
  U64: 64,
  F64: 64,
  C64: 64,
});

/** The reference crate's MAX_HEADER_SIZE: a larger header is refused before it is read. */
export const MAX_HEADER_BYTES = 100_000_000;

/** One tensor entry. dataOffsets are relative to the data start, END exclusive. */
export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  dataOffsets: [number, number];
}

/** A validated header. `tensors` is in data (offset) order; `dataStart = 8 + headerLength`. */
export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string> | null;
  headerLength: number;
  dataStart: number;
  /** Total file length the header was validated against (dataStart + the last tensor's END). */
  totalLength: number;
}

/** True when `s` names a dtype of the format. Own properties only (no "toString", "__proto__"). */
export function isSafetensorsDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === "string" && Object.hasOwn(DTYPE_BITS, s);
}

/** Bytes per element rounded up (1 for sub-byte dtypes): the alignment a writer gives each tensor. */
export function dtypeAlignment(dtype: SafetensorsDtype): number {
  return Math.ceil(DTYPE_BITS[dtype] / 8);
}

const LFS_MAGIC = "version https://git-lfs";

function startsWithAscii(bytes: Uint8Array, s: string): boolean {
  if (bytes.length < s.length) return false;
  for (let i = 0; i < s.length; i++) if (bytes[i] !== s.charCodeAt(i)) return false;
  return true;
}

/** Names what the input is when its first bytes show it is not safetensors at all ("" when unknown). */
function notSafetensorsHint(prefix: Uint8Array): string {
  if (startsWithAscii(prefix, LFS_MAGIC)) {
    return " (the input is a Git LFS pointer, not weights: fetch the real file with `git lfs pull`)";
  }
  if (startsWithAscii(prefix, "PK\x03\x04")) {
    return " (the input is a zip archive, as torch.save writes for .bin/.pt files; lorakit reads only safetensors)";
  }
  if (prefix[0] === 0x80 && prefix[1]! >= 2 && prefix[1]! <= 5) {
    return " (the input looks like a Python pickle; lorakit never unpickles, convert it to safetensors)";
  }
  return "";
}

/**
 * Rules 1–3: reads N from the first 8 bytes and checks it against the limit and the total input length.
 * Returns N. `prefix` needs only its first 8 bytes; `totalLength` is the length of the whole file.
 * @throws {SafetensorsError} header_too_small, header_too_large, invalid_header_length
 */
export function readSafetensorsHeaderLength(prefix: Uint8Array, totalLength: number, op = "parseSafetensors"): number {
  if (!(prefix instanceof Uint8Array) || !Number.isSafeInteger(totalLength) || totalLength < 0)
    throw new ArgumentError(
      "invalid_argument",
      `${op}: expected the file's first bytes as a Uint8Array and its total length as an integer ≥ 0, got ${prefix === null ? "null" : ArrayBuffer.isView(prefix) ? prefix.constructor.name : typeof prefix} and ${String(totalLength)}`,
      { name: "prefix" },
    );
  if (totalLength < 8 || prefix.length < 8) {
    throw new SafetensorsError(
      "header_too_small",
      `${op}: input has ${Math.min(totalLength, prefix.length)} bytes, expected at least 8 (the u64 header length)`,
      { length: totalLength },
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    const hint = notSafetensorsHint(prefix);
    throw new SafetensorsError(
      "header_too_large",
      `${op}: header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes${hint}`,
      { headerLength: n.toString(), limit: MAX_HEADER_BYTES, isLfsPointer: startsWithAscii(prefix, LFS_MAGIC) },
    );
  }
  const headerLength = Number(n);
  if (8 + headerLength > totalLength) {
    throw new SafetensorsError(
      "invalid_header_length",
      `${op}: header length ${headerLength} needs ${8 + headerLength} bytes but the input has ${totalLength}`,
      { headerLength, length: totalLength },
    );
  }
  return headerLength;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function quote(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);
}

/** What a value is, for "is X, expected Y" messages: arrays are named, not previewed. */
function kindOf(v: FieldValue): string {
  return Array.isArray(v) ? "an array" : describeValue(v);
}

const KNOWN_FIELDS = new Set(["dtype", "shape", "data_offsets"]);
type Field = ReturnType<JsonCursor["fieldValue"]>;

function isIndexArray(f: Field | undefined): f is Field & { value: number[] } {
  return f !== undefined && Array.isArray(f.value) && f.isIndexArray;
}

/** One tensor entry at the cursor (nesting level 2), checked field by field. */
function readEntry(c: JsonCursor, name: string): TensorInfo {
  const op = c.op;
  if (hasLoneSurrogate(name)) throw badHeader(op, `tensor name ${quote(name)} is not valid Unicode`, { name });
  if (c.ws() !== 0x7b) {
    const { value } = c.fieldValue(1);
    throw badHeader(op, `tensor ${quote(name)} is ${kindOf(value)}, expected an object`, { name });
  }
  c.i++;
  const fields = new Map<string, Field>();
  if (c.ws() === 0x7d) c.i++;
  else
    do {
      const key = c.key();
      if (!KNOWN_FIELDS.has(key)) {
        c.skip(2);
        continue;
      }
      if (fields.has(key)) {
        throw badHeader(op, `tensor ${quote(name)} has "${key}" twice (serde refuses a repeated field)`, {
          name,
          field: key,
        });
      }
      fields.set(key, c.fieldValue(2));
    } while (c.more(0x7d));
  const dtype = fields.get("dtype")?.value;
  if (!isSafetensorsDtype(dtype)) {
    const got = dtype === undefined ? "missing" : kindOf(dtype);
    throw badHeader(
      op,
      `tensor ${quote(name)} has dtype ${got}, expected one of ${Object.keys(DTYPE_BITS).join(", ")}`,
      { name, dtype: typeof dtype === "string" ? dtype : undefined },
    );
  }
  const shape = fields.get("shape");
  if (!isIndexArray(shape)) {
    const got = shape === undefined ? "missing" : describeValue(shape.value, shape.length);
    throw badHeader(op, `tensor ${quote(name)} has shape ${got}, expected an array of safe non-negative integers`, {
      name,
    });
  }
  const offsets = fields.get("data_offsets");
  if (!isIndexArray(offsets) || offsets.value.length !== 2) {
    const got = offsets === undefined ? "missing" : describeValue(offsets.value, offsets.length);
    throw badHeader(
      op,
      `tensor ${quote(name)} has data_offsets ${got}, expected [BEGIN, END] as two safe non-negative integers`,
      { name },
    );
  }
  return { name, dtype, shape: shape.value, dataOffsets: [offsets.value[0]!, offsets.value[1]!] };
}

/** The __metadata__ value at the cursor (nesting level 2): null or an object of strings. */
function readMetadata(c: JsonCursor): Record<string, string> | null {
  const op = c.op;
  if (c.ws() !== 0x7b) {
    const { value } = c.fieldValue(1);
    if (value === null) return null;
    throw badHeader(op, `__metadata__ is ${kindOf(value)}, expected an object of strings or null`);
  }
  c.i++;
  const pairs: [string, string][] = [];
  if (c.ws() === 0x7d) c.i++;
  else
    do {
      const k = c.key();
      const { value } = c.fieldValue(2);
      if (typeof value !== "string") {
        throw badHeader(op, `__metadata__[${quote(k)}] is ${kindOf(value)}, expected a string`, { key: k });
      }
      if (hasLoneSurrogate(k) || hasLoneSurrogate(value)) {
        throw badHeader(op, `__metadata__[${quote(k)}] is not valid Unicode`, { key: k });
      }
      pairs.push([k, value]);
    } while (c.more(0x7d));
  // fromEntries defines own properties, so a "__proto__" key stays data instead of replacing the prototype.
  return Object.fromEntries(pairs);
}

/**
 * Rules 4–5: decode the header text and read it (safetensors-json.ts: one linear pass, no recursion) into entries
 * (unsorted; a repeated tensor name keeps the last) and metadata.
 */
function readHeaderJson(
  op: string,
  text: Uint8Array,
): { entries: TensorInfo[]; metadata: Record<string, string> | null } {
  let json: string;
  try {
    json = UTF8.decode(text);
  } catch {
    throw new SafetensorsError("invalid_header", `${op}: header of ${text.length} bytes is not valid UTF-8`, {
      headerLength: text.length,
    });
  }
  const c = new JsonCursor(json, op);
  if (c.ws() !== 0x7b) {
    // Not an object: make sure it is JSON at all, then say what it is.
    let kind = "an array";
    if (c.ws() === 0x5b) c.skip(0);
    else kind = describeValue(c.scalar());
    if (c.ws() !== -1) throw c.fail("unexpected characters after the value");
    throw badHeader(op, `header is ${kind}, expected a JSON object`);
  }
  c.i++;
  let metadata: Record<string, string> | null = null;
  let hasMetadata = false;
  const entries = new Map<string, TensorInfo>();
  if (c.ws() === 0x7d) c.i++;
  else
    do {
      const name = c.key(false);
      if (name === "__metadata__") {
        if (hasMetadata) throw badHeader(op, `header has more than one "__metadata__" key`);
        hasMetadata = true;
        metadata = readMetadata(c);
      } else entries.set(name, readEntry(c, name));
    } while (c.more(0x7d));
  if (c.ws() !== -1) throw c.fail("unexpected characters after the header object");
  return { entries: [...entries.values()], metadata };
}

function byOffsets(a: TensorInfo, b: TensorInfo): number {
  const d = a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1];
  if (d !== 0) return d;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** prod(shape) · bits with a safe-integer check after every step (rule 7); undefined on overflow. */
function checkedBits(shape: readonly number[], bits: number): number | undefined {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  const b = n * bits;
  return b > Number.MAX_SAFE_INTEGER ? undefined : b;
}

/** Rules 6–9, tensor by tensor in offset order. Returns the END of the last tensor (0 when there are none). */
function validateOffsets(op: string, sorted: readonly TensorInfo[]): number {
  let start = 0;
  for (const t of sorted) {
    const [begin, end] = t.dataOffsets;
    if (begin !== start || end < begin) {
      const why =
        end < begin
          ? "END is before BEGIN"
          : begin > start
            ? `leaves a gap: the previous tensor ends at ${start}`
            : `overlaps: the previous tensor ends at ${start}`;
      throw new SafetensorsError(
        "invalid_offset",
        `${op}: tensor ${quote(t.name)} has data_offsets [${begin}, ${end}], which ${why}`,
        {
          name: t.name,
          dataOffsets: [begin, end],
          expectedBegin: start,
        },
      );
    }
    start = end;
    const bits = DTYPE_BITS[t.dtype];
    const nbits = checkedBits(t.shape, bits);
    const what = `${t.dtype} × [${t.shape.join(", ")}]`;
    if (nbits === undefined) {
      throw new SafetensorsError(
        "validation_overflow",
        `${op}: tensor ${quote(t.name)} has ${what}, whose size overflows 2^53`,
        {
          name: t.name,
          dtype: t.dtype,
          shape: t.shape,
        },
      );
    }
    if (nbits % 8 !== 0) {
      throw new SafetensorsError(
        "misaligned_slice",
        `${op}: tensor ${quote(t.name)} has ${what} = ${nbits} bits, not a whole number of bytes`,
        { name: t.name, dtype: t.dtype, shape: t.shape, bits: nbits },
      );
    }
    if (end - begin !== nbits / 8) {
      throw new SafetensorsError(
        "tensor_invalid_info",
        `${op}: tensor ${quote(t.name)} has data_offsets [${begin}, ${end}] but ${what} needs ${nbits / 8} bytes`,
        { name: t.name, dtype: t.dtype, shape: t.shape, dataOffsets: [begin, end], expectedBytes: nbits / 8 },
      );
    }
  }
  return start;
}

/**
 * Parses and validates a safetensors header (rules 1–10) given the bytes [0, 8+N) of a file and the file's total
 * length; the tensor data itself is not needed. Tensors come back in data order.
 * @param prefix at least the first 8 + N bytes of the file (more is fine)
 * @param totalLength the length of the whole file in bytes
 * @throws {SafetensorsError} with the code of the first rule that fails
 * @example parseSafetensorsHeader(bytes, bytes.length).tensors.get("w")?.shape // [2, 3]
 */
export function parseSafetensorsHeader(
  prefix: Uint8Array,
  totalLength: number,
  op = "parseSafetensors",
): SafetensorsHeader {
  const headerLength = readSafetensorsHeaderLength(prefix, totalLength, op);
  const dataStart = 8 + headerLength;
  if (prefix.length < dataStart) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: prefix has ${prefix.length} bytes, expected the whole header (${dataStart} bytes)`,
      { prefixLength: prefix.length, dataStart },
    );
  }
  const { entries, metadata } = readHeaderJson(op, prefix.subarray(8, dataStart));
  entries.sort(byOffsets);
  const end = validateOffsets(op, entries);
  if (dataStart + end !== totalLength) {
    throw new SafetensorsError(
      "metadata_incomplete_buffer",
      `${op}: tensors end at byte ${dataStart + end} (${dataStart} + ${end}) but the input has ${totalLength} bytes`,
      { dataStart, dataEnd: end, length: totalLength },
    );
  }
  const tensors = new Map<string, TensorInfo>();
  for (const t of entries) tensors.set(t.name, t);
  return { tensors, metadata, headerLength, dataStart, totalLength };
}

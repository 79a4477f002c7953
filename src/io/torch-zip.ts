// Zip central-directory reader for torch.save archives. Pure and browser-safe; entries are returned as views into
// the input (no copy). Layout (PKWARE APPNOTE 6.3): local headers + data, then the central directory (one 46-byte
// record + name + extra + comment per entry), then the end-of-central-directory record (22 bytes + comment) — with
// a zip64 EOCD record and locator before it when a count, size or offset overflows 16/32 bits.
// torch.save writes every entry "stored" (method 0, data padded to 64 bytes through the local extra field); a
// deflated entry (method 8) is refused by name rather than inflated. Every offset and size is checked against the
// input before it is used, and the entry count against the directory's size, so nothing allocates from a claim.

import { AdapterFormatError, TorchFileError } from "../errors.js";

/** One stored entry: its bytes are `bytes.subarray(dataStart, dataStart + size)`. */
export interface ZipEntry {
  name: string;
  dataStart: number;
  size: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_BYTES = 22;
const CENTRAL_BYTES = 46;
const LOCAL_BYTES = 30;
const MAX_COMMENT = 0xffff;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

function bad(op: string, what: string, details: Record<string, unknown> = {}): TorchFileError {
  return new TorchFileError("zip_invalid", `${op}: ${what}`, details);
}

/** True when the bytes start like a zip archive (a local file header). */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

class Reader {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly op: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(at: number, n: number, what: string): void {
    if (at < 0 || at + n > this.bytes.length)
      throw bad(this.op, `${what} at byte ${at} needs ${n} bytes but the file has ${this.bytes.length}`, { at, n });
  }
  u16(at: number): number {
    return this.view.getUint16(at, true);
  }
  u32(at: number): number {
    return this.view.getUint32(at, true);
  }
  u64(at: number, what: string): number {
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw bad(this.op, `${what} is ${v}, beyond 2^53 (file has ${this.bytes.length} bytes)`, { value: String(v) });
    return Number(v);
  }
}

interface Directory {
  count: number;
  size: number;
  offset: number;
  end: number;
}

// The EOCD record is the last 22 bytes unless a comment follows it: scan back over at most 64 KiB of comment.
function findDirectory(r: Reader): Directory {
  const len = r.bytes.length;
  const lowest = Math.max(0, len - EOCD_BYTES - MAX_COMMENT);
  let at = -1;
  for (let i = len - EOCD_BYTES; i >= lowest; i--) {
    if (r.u32(i) === EOCD_SIG && i + EOCD_BYTES + r.u16(i + 20) === len) {
      at = i;
      break;
    }
  }
  if (at < 0) throw bad(r.op, `no end-of-central-directory record in the last ${len - lowest} bytes (truncated?)`);
  let count = r.u16(at + 10);
  let size = r.u32(at + 12);
  let offset = r.u32(at + 16);
  let end = at;
  if (count === U16_MAX || size === U32_MAX || offset === U32_MAX) {
    const loc = at - 20;
    r.need(loc, 20, "zip64 end-of-central-directory locator");
    if (r.u32(loc) !== ZIP64_LOCATOR_SIG) throw bad(r.op, `zip64 locator missing before the EOCD record at ${at}`);
    const z = r.u64(loc + 8, "zip64 EOCD offset");
    r.need(z, 56, "zip64 end-of-central-directory record");
    if (r.u32(z) !== ZIP64_EOCD_SIG || z > loc) throw bad(r.op, `no zip64 EOCD record at byte ${z}`, { at: z });
    count = r.u64(z + 32, "zip64 entry count");
    size = r.u64(z + 40, "zip64 central directory size");
    offset = r.u64(z + 48, "zip64 central directory offset");
    end = z;
  }
  if (offset + size > end)
    throw bad(r.op, `central directory [${offset}, ${offset + size}) runs past its end record at byte ${end}`);
  if (count * CENTRAL_BYTES > size)
    throw bad(r.op, `${count} entries cannot fit in a ${size}-byte central directory (46 bytes each at least)`);
  return { count, size, offset, end };
}

// zip64 extended information (header id 0x0001): the 64-bit values of the fields that are 0xFFFFFFFF, in order.
function zip64Extra(r: Reader, at: number, len: number, fields: { usize: number; csize: number; local: number }): void {
  let p = at;
  while (p + 4 <= at + len) {
    const id = r.u16(p);
    const n = r.u16(p + 2);
    if (p + 4 + n > at + len) throw bad(r.op, `extra field at byte ${p} runs past its entry`);
    if (id === 0x0001) {
      let q = p + 4;
      for (const key of ["usize", "csize", "local"] as const) {
        if (fields[key] !== U32_MAX) continue;
        if (q + 8 > p + 4 + n) throw bad(r.op, `zip64 extra field at byte ${p} lacks the 64-bit ${key}`);
        fields[key] = r.u64(q, `zip64 ${key}`);
        q += 8;
      }
      return;
    }
    p += 4 + n;
  }
}

/**
 * Lists the entries of a zip archive of stored (uncompressed) files, each checked to lie inside the input.
 * @throws {TorchFileError} "zip_invalid" (truncated or inconsistent archive, duplicate names)
 * @throws {AdapterFormatError} "unsupported_format" (compressed or encrypted entries)
 * @example readZipEntries(bytes).get("archive/data.pkl")
 */
export function readZipEntries(bytes: Uint8Array, op = "readZipEntries"): Map<string, ZipEntry> {
  const r = new Reader(bytes, op);
  if (bytes.length < EOCD_BYTES) throw bad(op, `${bytes.length} bytes is too short for a zip archive (22 at least)`);
  const dir = findDirectory(r);
  const out = new Map<string, ZipEntry>();
  let p = dir.offset;
  for (let i = 0; i < dir.count; i++) {
    r.need(p, CENTRAL_BYTES, `central directory entry ${i}`);
    if (r.u32(p) !== CENTRAL_SIG) throw bad(op, `central directory entry ${i} at byte ${p} has a bad signature`);
    const flags = r.u16(p + 8);
    const method = r.u16(p + 10);
    const nameLen = r.u16(p + 28);
    const extraLen = r.u16(p + 30);
    const commentLen = r.u16(p + 32);
    r.need(p + CENTRAL_BYTES, nameLen + extraLen + commentLen, `central directory entry ${i}`);
    if (p + CENTRAL_BYTES + nameLen + extraLen + commentLen > dir.offset + dir.size)
      throw bad(op, `central directory entry ${i} runs past the directory's end`);
    let name: string;
    try {
      name = UTF8.decode(bytes.subarray(p + CENTRAL_BYTES, p + CENTRAL_BYTES + nameLen));
    } catch {
      throw bad(op, `entry ${i} has a name that is not UTF-8`);
    }
    const fields = { usize: r.u32(p + 24), csize: r.u32(p + 20), local: r.u32(p + 42) };
    zip64Extra(r, p + CENTRAL_BYTES + nameLen, extraLen, fields);
    if ((flags & 1) !== 0)
      throw new AdapterFormatError("unsupported_format", `${op}: entry "${name}" is encrypted`, { name });
    if (method !== 0)
      throw new AdapterFormatError(
        "unsupported_format",
        `${op}: entry "${name}" uses compression method ${method}${method === 8 ? " (deflate)" : ""}, expected 0 (stored): torch.save never compresses; re-save the file with torch.save`,
        { name, method },
      );
    if (fields.csize !== fields.usize)
      throw bad(op, `stored entry "${name}" has ${fields.csize} bytes but claims ${fields.usize} uncompressed`);
    out.set(name, localEntry(r, name, fields.local, fields.csize, dir.offset));
    if (out.size !== i + 1) throw bad(op, `entry "${name}" appears twice`, { name });
    p += CENTRAL_BYTES + nameLen + extraLen + commentLen;
  }
  return out;
}

function localEntry(r: Reader, name: string, at: number, size: number, limit: number): ZipEntry {
  r.need(at, LOCAL_BYTES, `local header of "${name}"`);
  if (r.u32(at) !== LOCAL_SIG) throw bad(r.op, `local header of "${name}" at byte ${at} has a bad signature`);
  const dataStart = at + LOCAL_BYTES + r.u16(at + 26) + r.u16(at + 28);
  if (dataStart + size > limit)
    throw bad(
      r.op,
      `entry "${name}" has data [${dataStart}, ${dataStart + size}) past the central directory at byte ${limit}`,
      { name, dataStart, size },
    );
  return { name, dataStart, size };
}

// Reading safetensors files through a FileHandle: the first 32 bytes, then the rest of the header (only after rules
// 1–3 have bounded N by both the 100 MB limit and the file size), then only the tensors asked for. A multi-GB model
// is never read whole.
// writeFileAtomic (atomic-write.ts) is re-exported here, where it has always been imported from.

import { type FileHandle, open } from "node:fs/promises";
import { SafetensorsError } from "../errors.js";
import {
  decodeToFloat32,
  decodeToFloat64,
  parseSafetensorsHeader,
  readSafetensorsHeaderLength,
  type SafetensorsHeader,
  type TensorInfo,
  tensorNotFound,
} from "../io/safetensors.js";
import { requirePath } from "./path-arg.js";

export { writeFileAtomic } from "./atomic-write.js";

/** An open safetensors file: a validated header and on-demand tensor reads. */
export interface SafetensorsFile {
  path: string;
  header: SafetensorsHeader;
  /** Tensor names in data order. */
  names(): string[];
  /** @throws {SafetensorsError} tensor_not_found */
  info(name: string): TensorInfo;
  /** Reads one tensor's raw little-endian bytes (a fresh buffer). */
  read(name: string): Promise<Uint8Array>;
  readFloat32(name: string): Promise<Float32Array>;
  readFloat64(name: string): Promise<Float64Array>;
  /** Bytes read from the file so far (header included). */
  readonly bytesRead: number;
  close(): Promise<void>;
}

// One read or write call moves at most 2^31 - 1 bytes in Node; tensors over 2 GB are moved in 1 GiB steps.
const MAX_IO_BYTES = 1 << 30;

async function readExactly(fh: FileHandle, length: number, position: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, Math.min(length - done, MAX_IO_BYTES), position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(
        "metadata_incomplete_buffer",
        `openSafetensors: unexpected end of file at byte ${position + done} (the file changed while open?)`,
        { position: position + done },
      );
    }
    done += bytesRead;
  }
  return buf;
}

/**
 * Opens a safetensors file and validates its header (every rule of SAFETENSORS.md) without reading tensor data.
 * Close it when done.
 * @throws {SafetensorsError} the parser's codes, with the path in the message; file system errors as Node raises them
 * @example const f = await openSafetensors("adapter_model.safetensors"); const w = await f.readFloat32(f.names()[0]!); await f.close();
 */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  requirePath("openSafetensors", "path", path);
  const op = `openSafetensors: ${path}`;
  const fh = await open(path, "r");
  let bytesRead = 0;
  try {
    const size = (await fh.stat()).size;
    // 32 bytes, not 8: enough to recognise a Git LFS pointer ("version https://git-lfs...") in the message.
    const first = await readExactly(fh, Math.min(32, size), 0);
    bytesRead += first.length;
    const headerLength = readSafetensorsHeaderLength(first, size, op);
    const prefix = new Uint8Array(8 + headerLength);
    prefix.set(first.subarray(0, prefix.length), 0);
    if (first.length < prefix.length) {
      prefix.set(await readExactly(fh, prefix.length - first.length, first.length), first.length);
      bytesRead += prefix.length - first.length;
    }
    const header = parseSafetensorsHeader(prefix, size, op);
    const get = (name: string, where: string): TensorInfo => {
      const t = header.tensors.get(name);
      if (t === undefined) throw tensorNotFound(where, name, header.tensors.keys());
      return t;
    };
    const readInfo = async (t: TensorInfo): Promise<Uint8Array> => {
      const [begin, end] = t.dataOffsets;
      const bytes = await readExactly(fh, end - begin, header.dataStart + begin);
      bytesRead += bytes.length;
      return bytes;
    };
    return {
      path,
      header,
      names: () => [...header.tensors.keys()],
      info: (name) => get(name, "info"),
      read: async (name) => readInfo(get(name, "read")),
      readFloat32: async (name) => {
        const t = get(name, "readFloat32");
        return decodeToFloat32(await readInfo(t), t.dtype, { name, op: "readFloat32", isOwned: true });
      },
      readFloat64: async (name) => {
        const t = get(name, "readFloat64");
        return decodeToFloat64(await readInfo(t), t.dtype, { name, op: "readFloat64", isOwned: true });
      },
      get bytesRead() {
        return bytesRead;
      },
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

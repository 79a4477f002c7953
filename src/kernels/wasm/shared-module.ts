// Derives the shared-memory (threads) build of a WebAssembly module from its private-memory build by rewriting
// the limits of its one imported memory: flag 0x00/0x01 (min[, max]) → 0x03 (shared, min, max). For the
// AssemblyScript kernels that is the only difference between the two builds (scripts/build-wasm.mjs checks that
// the result equals asc's own --sharedMemory output byte for byte), so only the private builds are shipped.
// Wasm binary layout read here: magic + version (8 bytes), then sections: id (1 byte), size (LEB128), payload;
// the import section (id 2) holds count, then per import: module name, field name (each LEB128 length + bytes),
// kind (0 function, 1 table, 2 memory, 3 global) and its description.

function readLeb(b: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < b.length; i++) {
    const byte = b[i]!;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [value, i + 1];
  }
  throw new Error("shared-module: truncated LEB128");
}

function leb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

/** Skips one import description of the given kind starting at `at`; returns the offset after it. */
function skipDesc(b: Uint8Array, kind: number, at: number): number {
  if (kind === 0) return readLeb(b, at)[1]; // type index
  if (kind === 3) return at + 2; // value type, mutability
  const p = kind === 1 ? at + 1 : at; // a table starts with its element type
  const flags = b[p]!;
  let q = readLeb(b, p + 1)[1]; // min
  if (flags & 1) q = readLeb(b, q)[1]; // max
  return q;
}

/** The module with its imported memory made shared with maximum `maxPages` (64 KiB pages). */
export function withSharedMemory(bytes: Uint8Array, maxPages: number): Uint8Array<ArrayBuffer> {
  let at = 8;
  while (at < bytes.length) {
    const id = bytes[at]!;
    const [size, body] = readLeb(bytes, at + 1);
    const end = body + size;
    if (id === 2) {
      let [count, p] = readLeb(bytes, body);
      for (; count > 0; count--) {
        const [modLen, m] = readLeb(bytes, p);
        const [fieldLen, f] = readLeb(bytes, m + modLen);
        const kindAt = f + fieldLen;
        const kind = bytes[kindAt]!;
        const next = skipDesc(bytes, kind, kindAt + 1);
        if (kind === 2) {
          const [min] = readLeb(bytes, kindAt + 2);
          const limits = [0x03, ...leb(min), ...leb(maxPages)];
          const payload = [...bytes.subarray(body, kindAt + 1), ...limits, ...bytes.subarray(next, end)];
          const section = [2, ...leb(payload.length), ...payload]; // the rewritten import section
          const out = new Uint8Array(at + section.length + (bytes.length - end));
          out.set(bytes.subarray(0, at), 0);
          out.set(section, at);
          out.set(bytes.subarray(end), at + section.length);
          return out;
        }
        p = next;
      }
    }
    at = end;
  }
  throw new Error("shared-module: no imported memory");
}

// Builds raw safetensors bytes for tests: an explicit header text (so malformed headers can be written) and data.

/** 8-byte little-endian N, then `header` (a string, written as UTF-8, or raw bytes), then `data`. */
export function rawSafetensors(
  header: string | Uint8Array | object,
  data: Uint8Array | number = 0,
  opts: { headerLength?: bigint } = {},
): Uint8Array {
  const text =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + body.length);
  new DataView(out.buffer).setBigUint64(0, opts.headerLength ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(body, 8 + text.length);
  return out;
}

/** The same bytes placed at byte `offset` of a larger buffer (as Node's Buffer pool does). */
export function atOffset(bytes: Uint8Array, offset: number): Uint8Array {
  const big = new Uint8Array(bytes.length + offset + 5).fill(0xaa);
  big.set(bytes, offset);
  return big.subarray(offset, offset + bytes.length);
}

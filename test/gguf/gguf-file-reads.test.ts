// openGguf reads no further than the header needs: a tensor that ends past the end of the file is refused after the
// first read, a header longer than the first read is read once (the bytes held are not read again), and a header cut
// short is refused without reading the file more than once. Reads are counted through a wrapped fs.promises.open.

import { closeSync, openSync, truncateSync, writeSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import type { GgufValue } from "../../src/io/gguf-types.js";
import { serializeGgufHeader } from "../../src/io/gguf-write.js";
import { openGguf } from "../../src/node/gguf-file.js";
import { tmpFile } from "./helpers.js";

const counted = vi.hoisted(() => ({ bytes: 0 }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs/promises")>();
  const open: typeof fs.open = async (...args) => {
    const fh = await fs.open(...args);
    const read = fh.read.bind(fh) as (...a: unknown[]) => Promise<{ bytesRead: number }>;
    Object.assign(fh, {
      read: async (...a: unknown[]) => {
        const r = await read(...a);
        counted.bytes += r.bytesRead;
        return r;
      },
    });
    return fh;
  };
  return { ...fs, default: { ...fs, open }, open };
});

const MiB = 1 << 20;

/** Writes a GGUF header and sizes the file to `size` bytes (sparse: the data section is holes). */
function ggufFile(name: string, metadata: Record<string, GgufValue>, elements: number, size: number): string {
  const path = tmpFile(name);
  const { header } = serializeGgufHeader(metadata, [{ name: "t", shape: [elements], type: "F32" }]);
  const fd = openSync(path, "w");
  writeSync(fd, header);
  closeSync(fd);
  truncateSync(path, size);
  return path;
}

async function refusal(path: string): Promise<{ code?: string; message: string }> {
  counted.bytes = 0;
  const e = await openGguf(path).then(
    () => null,
    (err: unknown) => err,
  );
  if (e === null) throw new Error("expected openGguf to refuse the file");
  return e as { code?: string; message: string };
}

const VOCAB: Record<string, GgufValue> = {
  "general.architecture": { type: "string", value: "llama" },
  // about 2.9 MB of header: more than the first read of 1 MiB
  "tokenizer.ggml.tokens": {
    type: "array",
    itemType: "string",
    value: Array.from({ length: 200_000 }, (_, i) => `t${i}`),
  },
};

describe("openGguf reads only as far as the header needs", () => {
  it("a tensor past the end of an 8 MiB file is refused after the first MiB", async () => {
    const path = ggufFile(
      "past-end.gguf",
      { "general.architecture": { type: "string", value: "llama" } },
      4 * MiB,
      8 * MiB,
    );
    const e = await refusal(path);
    expect(e.code).toBe("truncated_file");
    expect(e.message).toMatch(
      /tensor "t" \(F32 \[4194304\], 16777216 bytes at \d+\) ends past the end of the file \(8388608 bytes\)$/,
    );
    expect(counted.bytes).toBe(MiB);
  });

  it("a header longer than the first read is read once, not re-read from the start", async () => {
    const path = ggufFile("long-header.gguf", VOCAB, 8, 8 * MiB);
    counted.bytes = 0;
    const f = await openGguf(path);
    await f.close();
    expect(f.metadata.get("tokenizer.ggml.tokens")?.value).toHaveLength(200_000);
    expect(counted.bytes).toBeGreaterThanOrEqual(f.dataStart);
    expect(counted.bytes).toBeLessThanOrEqual(2 * f.dataStart);
  });

  it("a header cut short is refused, each byte read once", async () => {
    const { header } = serializeGgufHeader(VOCAB, [{ name: "t", shape: [8], type: "F32" }]);
    const size = header.length - 100;
    const path = ggufFile("cut-header.gguf", VOCAB, 8, size);
    const e = await refusal(path);
    expect(e.code).toBe("validation_overflow");
    expect(e.message).toMatch(
      /: item \d+ of "tokenizer\.ggml\.tokens" length is \d+ \(at offset \d+\), but .* exceed the \d+ bytes left in the file$/,
    );
    expect(counted.bytes).toBe(size);
  });
});

// Every real .safetensors file in ../shared/fixtures/real parses, and matches what an independent reader
// (scripts/make-safetensors-golden.py: struct + json + numpy) recorded in test/golden/safetensors-real.json.
// Files under 20 KB are copied into test/fixtures/safetensors/ and always run; the larger ones are read from the
// shared folder next to the repository (override with LORAKIT_SHARED=/path/to/shared) and skipped when it is absent.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSafetensors } from "../../src/index.js";
import { openSafetensors } from "../../src/node/index.js";
import { REAL_FIXTURES, REPO_ROOT } from "../helpers/shared.js";

interface GoldenTensor {
  name: string;
  dtype: string;
  shape: number[];
  dataOffsets: [number, number];
  sha256: string;
  valuesSha256?: string;
}
interface GoldenFile {
  path: string;
  size: number;
  sha256: string;
  headerLength: number;
  dataStart: number;
  metadata: Record<string, string> | null;
  tensors: GoldenTensor[];
  fixture?: string;
}

const golden = JSON.parse(readFileSync(join(REPO_ROOT, "test", "golden", "safetensors-real.json"), "utf8")) as {
  files: GoldenFile[];
};
const hasShared = REAL_FIXTURES !== null;
const sharedReal = REAL_FIXTURES ?? join(REPO_ROOT, "..", "shared", "fixtures", "real");

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** sha256 of float64 little-endian values with every NaN written as 0x7ff8000000000000 (as the golden script). */
function valuesSha256(values: Float64Array): string {
  const copy = values.slice();
  const words = new Uint32Array(copy.buffer);
  for (let i = 0; i < copy.length; i++) {
    if (Number.isNaN(copy[i])) {
      words[2 * i] = 0;
      words[2 * i + 1] = 0x7ff80000;
    }
  }
  return sha256(new Uint8Array(copy.buffer));
}

function locate(f: GoldenFile): string | undefined {
  if (f.fixture !== undefined) return join(REPO_ROOT, "test", "fixtures", "safetensors", f.fixture);
  return hasShared ? join(sharedReal, f.path) : undefined;
}

describe("a real Git LFS pointer", () => {
  const lfs = join(sharedReal, "ESM2-bindingsites", "adapter_model.bin");
  it.skipIf(!existsSync(lfs))("is reported as a Git LFS pointer, not weights", () => {
    const bytes = readFileSync(lfs);
    expect(() => parseSafetensors(bytes)).toThrow(
      /^parseSafetensors: header length \d+ exceeds the limit of 100000000 bytes \(the input is a Git LFS pointer, not weights/,
    );
    expect(() => parseSafetensors(bytes)).toThrow(expect.objectContaining({ code: "header_too_large" }));
  });
});

describe("real safetensors files match the independent reader", () => {
  it("the golden file lists every real file (15 files, 110 tensors)", () => {
    expect(golden.files.length).toBe(15);
    expect(golden.files.reduce((n, f) => n + f.tensors.length, 0)).toBe(110);
  });

  for (const f of golden.files) {
    const path = locate(f);
    if (path === undefined) {
      it.skip(`${f.path}: skipped, shared fixtures not found at ${sharedReal} (set LORAKIT_SHARED)`, () => {});
      continue;
    }
    it(`${f.path} (${f.tensors.length} tensors)`, async () => {
      const bytes = readFileSync(path);
      expect(sha256(bytes)).toBe(f.sha256);
      const p = parseSafetensors(bytes);
      expect(p.header.headerLength).toBe(f.headerLength);
      expect(p.header.dataStart).toBe(f.dataStart);
      expect(p.metadata).toEqual(f.metadata);
      expect(p.names()).toEqual(f.tensors.map((t) => t.name));
      for (const t of f.tensors) {
        const info = p.info(t.name);
        expect({ dtype: info.dtype, shape: info.shape, dataOffsets: info.dataOffsets }).toEqual({
          dtype: t.dtype,
          shape: t.shape,
          dataOffsets: t.dataOffsets,
        });
        expect(sha256(p.bytes(t.name)), t.name).toBe(t.sha256);
        if (t.valuesSha256 !== undefined) {
          expect(valuesSha256(p.toFloat64(t.name)), t.name).toBe(t.valuesSha256);
          // float32 holds F32/F16/BF16 and 8/16-bit integers exactly; wider types round (checked via toFloat64).
          if (!["F64", "I32", "U32", "I64", "U64"].includes(t.dtype)) {
            expect(valuesSha256(Float64Array.from(p.toFloat32(t.name))), t.name).toBe(t.valuesSha256);
          }
        }
      }
      const file = await openSafetensors(path);
      try {
        expect([...file.header.tensors.keys()]).toEqual(p.names());
        const last = f.tensors.at(-1);
        if (last !== undefined) expect(sha256(await file.read(last.name))).toBe(last.sha256);
      } finally {
        await file.close();
      }
    });
  }
});

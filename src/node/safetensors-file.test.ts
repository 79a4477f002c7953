import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawSafetensors } from "../../test/helpers/safetensors.js";
import { LoraError } from "../errors.js";
import { serializeSafetensors } from "../io/safetensors.js";
import { openSafetensors, writeFileAtomic } from "./safetensors-file.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lorakit-safetensors-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<LoraError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LoraError) return err;
    throw err;
  }
  throw new Error("expected a rejection");
}

describe("openSafetensors", () => {
  it("reads the header, then only the bytes of the tensors asked for", async () => {
    const path = join(dir, "multi.safetensors");
    const big = new Float32Array(4096).map((_, i) => i);
    const bytes = serializeSafetensors(
      {
        big: { dtype: "F32", shape: [64, 64], data: big },
        small: { dtype: "BF16", shape: [3], data: new Float32Array([1, 2, 3]) },
        other: { dtype: "F64", shape: [1000], data: new Float64Array(1000) },
      },
      { format: "pt" },
    );
    await writeFileAtomic(path, bytes);
    const f = await openSafetensors(path);
    try {
      expect(f.header.metadata).toEqual({ format: "pt" });
      expect(f.names()).toEqual(["other", "big", "small"]);
      expect(f.bytesRead).toBe(f.header.dataStart);
      expect([...(await f.readFloat32("small"))]).toEqual([1, 2, 3]);
      expect(f.bytesRead).toBe(f.header.dataStart + 6);
      expect([...(await f.readFloat64("small"))]).toEqual([1, 2, 3]);
      expect(await f.readFloat32("big")).toEqual(big);
      expect(f.bytesRead).toBe(f.header.dataStart + 12 + 4 * 4096);
      expect((await f.read("other")).length).toBe(8000);
      expect(f.info("big").shape).toEqual([64, 64]);
      const err = await rejection(f.read("nope"));
      expect(err.code).toBe("tensor_not_found");
      expect(err.message).toBe('read: no tensor named "nope" among 3 tensors');
    } finally {
      await f.close();
    }
  });

  it("refuses a header claiming 100 MB on a tiny file before allocating it", async () => {
    const path = join(dir, "claims-100mb.safetensors");
    await writeFile(path, rawSafetensors("{}", 0, { headerLength: 100_000_000n }));
    const before = process.memoryUsage().arrayBuffers;
    const err = await rejection(openSafetensors(path));
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(err.code).toBe("invalid_header_length");
    expect(err.message).toBe(
      `openSafetensors: ${path}: header length 100000000 needs 100000008 bytes but the input has 10`,
    );
    expect(grown).toBeLessThan(10_000_000);
    await writeFile(path, rawSafetensors("{}", 0, { headerLength: 100_000_001n }));
    const tooLarge = await rejection(openSafetensors(path));
    expect(tooLarge.code).toBe("header_too_large");
  });

  it("says a Git LFS pointer is not weights, and reports short and broken files with the path", async () => {
    const lfs = join(dir, "adapter_model.safetensors");
    await writeFile(lfs, "version https://git-lfs.github.com/spec/v1\noid sha256:9d46\nsize 307151\n");
    const err = await rejection(openSafetensors(lfs));
    expect(err.code).toBe("header_too_large");
    expect(err.message).toMatch(
      /^openSafetensors: .*adapter_model\.safetensors: header length \d+ exceeds the limit of 100000000 bytes \(the input is a Git LFS pointer, not weights/,
    );
    const short = join(dir, "short.safetensors");
    await writeFile(short, new Uint8Array(3));
    const tiny = await rejection(openSafetensors(short));
    expect(tiny.code).toBe("header_too_small");
    expect(tiny.message).toBe(
      `openSafetensors: ${short}: input has 3 bytes, expected at least 8 (the u64 header length)`,
    );
    const broken = join(dir, "broken.safetensors");
    await writeFile(broken, rawSafetensors({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, 4));
    const info = await rejection(openSafetensors(broken));
    expect(info.code).toBe("tensor_invalid_info");
    expect(info.message).toBe(
      `openSafetensors: ${broken}: tensor "a" has data_offsets [0, 4] but F32 × [2] needs 8 bytes`,
    );
  });
  it("reports a file that shrinks while open (metadata_incomplete_buffer)", async () => {
    const path = join(dir, "shrinks.safetensors");
    await writeFile(path, serializeSafetensors({ w: { dtype: "F32", shape: [16], data: new Float32Array(16) } }));
    const f = await openSafetensors(path);
    try {
      await truncate(path, f.header.dataStart + 8);
      const err = await rejection(f.readFloat32("w"));
      expect(err.code).toBe("metadata_incomplete_buffer");
      expect(err.message).toBe(
        `openSafetensors: unexpected end of file at byte ${f.header.dataStart + 8} (the file changed while open?)`,
      );
    } finally {
      await f.close();
    }
  });
});

describe("writeFileAtomic", () => {
  it("writes chunks from an async iterable", async () => {
    const path = join(dir, "chunks.bin");
    async function* chunks() {
      yield new Uint8Array([1, 2]);
      yield new Uint8Array([3]);
    }
    await writeFileAtomic(path, chunks());
    expect([...(await readFile(path))]).toEqual([1, 2, 3]);
  });

  it("leaves the target untouched and no temporary file when the producer fails", async () => {
    const path = join(dir, "keep.bin");
    await writeFile(path, "old");
    function* failing() {
      yield new Uint8Array([1]);
      throw new Error("producer failed");
    }
    await expect(writeFileAtomic(path, failing())).rejects.toThrow(/^producer failed$/);
    expect(await readFile(path, "utf8")).toBe("old");
    expect((await readdir(dir)).filter((n) => n.includes("keep.bin") && n !== "keep.bin")).toEqual([]);
  });

  it("a missing folder, a file where a folder is needed, and a folder as target: invalid_output naming the path", async () => {
    await writeFile(join(dir, "plain"), "x");
    const cases: [string, string][] = [
      [
        join(dir, "no", "such", "x.bin"),
        `its folder ${join(dir, "no", "such")} does not exist or cannot hold files (ENOENT)`,
      ],
      [join(dir, "plain", "x.bin"), `its folder ${join(dir, "plain")} does not exist or cannot hold files (ENOTDIR)`],
      [dir, "it is a folder (EISDIR)"],
    ];
    for (const [path, why] of cases)
      await expect(writeFileAtomic(path, new Uint8Array(4), { op: "test" })).rejects.toMatchObject({
        code: "invalid_output",
        message: `test: cannot write ${path}: ${why}; nothing was written`,
      });
    // an ENOENT about another path (an input read while writing) is passed on as it is
    async function* reading() {
      yield new Uint8Array(1);
      await readFile(join(dir, "vanished-input"));
    }
    await expect(writeFileAtomic(join(dir, "out.bin"), reading(), { op: "test" })).rejects.toMatchObject({
      code: "ENOENT",
      path: join(dir, "vanished-input"),
    });
    const locked = Object.assign(new Error("EACCES: permission denied"), { code: "EACCES", path: "/elsewhere/in" });
    function* unreadable() {
      yield new Uint8Array(1);
      throw locked;
    }
    await expect(writeFileAtomic(join(dir, "out.bin"), unreadable(), { op: "test" })).rejects.toBe(locked);
  });
});

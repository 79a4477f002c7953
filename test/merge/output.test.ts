// What `merge` may write (issue 11 items 10 and 12): never the base itself (same path, symlink, hard link), never
// a folder, device, FIFO or '', each refused with its own code before anything is written; a full disk or a read-only
// folder is a coded one-line error with the temporary file removed; a replaced file keeps its mode; a value beyond
// the f16 range and NaN in the base are refused naming the tensor and the base.

import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { parseSafetensors } from "../../src/io/safetensors.js";
import { savePeftAdapterDir } from "../../src/node/adapter-files.js";
import { makeFolder, type OpenFile } from "../../src/node/atomic-write.js";
import { mergeAdapterIntoModel } from "../../src/node/merge.js";
import { checkFreeSpace } from "../../src/node/merge-output.js";
import { REPO_ROOT } from "../peft/shared.js";
import { adapterBytes, GPT2_CONFIG } from "../peft/synthetic.js";
import { editedBase, mergeFixture, rejected, temporaries } from "./setup.js";

const MAIN = join(REPO_ROOT, "dist", "cli", "main.js");

/** An OpenFile whose handles fail like a full disk once `limit` bytes have been written. */
function fullDisk(limit: number): OpenFile {
  return async (path, flags, mode) => {
    const fh = await open(path, flags, mode);
    const write = fh.write.bind(fh) as (b: Uint8Array, o: number, l: number) => Promise<{ bytesWritten: number }>;
    let written = 0;
    Object.assign(fh, {
      write: async (buf: Uint8Array, offset: number, length: number) => {
        if (written + length > limit) {
          throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28 });
        }
        written += length;
        return write(buf, offset, length);
      },
    });
    return fh;
  };
}

/** An OpenFile that fails like a read-only file system (EROFS even for root). */
const readOnly: OpenFile = async (path) => {
  throw Object.assign(new Error(`EROFS: read-only file system, open '${path}'`), { code: "EROFS", errno: -30, path });
};

describe("merge --out: what may be written", () => {
  it("the base itself, a symlink to it and a hard link to it are refused; the base is untouched", async () => {
    const f = await mergeFixture();
    const symlink = join(f.dir, "link.safetensors");
    const hardlink = join(f.dir, "hard.safetensors");
    symlinkSync(f.basePath, symlink);
    linkSync(f.basePath, hardlink);
    for (const [out, how] of [
      [f.basePath, ""],
      [symlink, " (through a link)"],
      [hardlink, " (through a link)"],
    ] as const) {
      const err = await rejected(() => mergeAdapterIntoModel(f.basePath, f.adapter, { out }), "output_is_input");
      expect(err.message).toBe(
        `mergeAdapterIntoModel: out ${out} is the base model's ${f.basePath}${how}; writing it would replace what the merge reads — choose another path; nothing was written`,
      );
    }
    expect(readFileSync(f.basePath)).toEqual(Buffer.from(f.baseBytes));
    expect(temporaries(f.dir)).toEqual([]);
  });

  it("a FIFO, a folder and '' are refused, and the FIFO stays a FIFO", async () => {
    const f = await mergeFixture();
    const fifo = join(f.dir, "pipe");
    execFileSync("mkfifo", [fifo]);
    let err = await rejected(() => mergeAdapterIntoModel(f.basePath, f.adapter, { out: fifo }), "invalid_output");
    expect(err.message).toBe(
      `mergeAdapterIntoModel: out ${JSON.stringify(fifo)} is a FIFO (only a regular file or a new path is written); nothing was written`,
    );
    expect(statSync(fifo).isFIFO()).toBe(true);
    const folder = join(f.dir, "folder");
    mkdirSync(folder);
    err = await rejected(() => mergeAdapterIntoModel(f.basePath, f.adapter, { out: folder }), "invalid_output");
    expect(err.message).toMatch(/is a folder, expected a file path such as <folder>\/model\.safetensors/);
    err = await rejected(() => mergeAdapterIntoModel(f.basePath, f.adapter, { out: "" }), "invalid_output");
    expect(err.message).toBe('mergeAdapterIntoModel: out is "", expected a file path; nothing was written');
    expect(temporaries(f.dir)).toEqual([]);
  });

  it("a full disk: no_space, the temporary file removed, an existing output left as it was", async () => {
    const f = await mergeFixture();
    const out = join(f.dir, "merged.safetensors");
    writeFileSync(out, "previous output");
    const err = await rejected(
      () => mergeAdapterIntoModel(f.basePath, f.adapter, { out, openFile: fullDisk(1000) }),
      "no_space",
    );
    expect(err.message).toBe(
      `mergeAdapterIntoModel: no space left on the device while writing ${out} (ENOSPC); nothing was written`,
    );
    expect(readFileSync(out, "utf8")).toBe("previous output");
    expect(temporaries(f.dir)).toEqual([]);
  });

  it("too little free space is refused before writing", async () => {
    const f = await mergeFixture();
    const out = join(f.dir, "merged.safetensors");
    const err = await rejected(() => checkFreeSpace("merge", out, 2 ** 50), "no_space");
    expect(err.message).toMatch(
      /^merge: .*merged\.safetensors needs 1048576\.00 GiB \(1125899906842624 bytes\) but .* free; nothing was written$/,
    );
  });

  it("a read-only file system: not_writable, nothing left behind", async () => {
    const f = await mergeFixture();
    const out = join(f.dir, "merged.safetensors");
    const err = await rejected(
      () => mergeAdapterIntoModel(f.basePath, f.adapter, { out, openFile: readOnly }),
      "not_writable",
    );
    expect(err.message).toBe(
      `mergeAdapterIntoModel: cannot write ${out}: the file system is read-only in folder ${f.dir} (EROFS); nothing was written`,
    );
    expect(existsSync(out)).toBe(false);
    expect(temporaries(f.dir)).toEqual([]);
  });

  it.skipIf(process.getuid?.() === 0)("a folder without write permission is refused before writing", async () => {
    const f = await mergeFixture();
    const locked = join(f.dir, "locked");
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    const out = join(locked, "merged.safetensors");
    const err = await rejected(() => mergeAdapterIntoModel(f.basePath, f.adapter, { out }), "not_writable");
    expect(err.message).toMatch(/cannot write .*: permission denied in folder .*locked \(EACCES\)/);
  });

  it("a replaced output keeps its mode; a new one gets the default", async () => {
    const f = await mergeFixture();
    const out = join(f.dir, "merged.safetensors");
    writeFileSync(out, "old");
    chmodSync(out, 0o640);
    await mergeAdapterIntoModel(f.basePath, f.adapter, { out });
    expect(statSync(out).mode & 0o7777).toBe(0o640);
    expect(parseSafetensors(readFileSync(out)).names().length).toBeGreaterThan(0);
    chmodSync(out, 0o604);
    await mergeAdapterIntoModel(f.basePath, f.adapter, { out });
    expect(statSync(out).mode & 0o7777).toBe(0o604);
  });
});

describe("merge: values the output cannot hold", () => {
  it("--dtype f16: a value beyond 65504 is cast_overflow naming the tensor; bf16 holds it", async () => {
    const f = await mergeFixture(editedBase("wpe.weight", (v) => v.fill(70000, 3, 5)));
    const out = join(f.dir, "merged.safetensors");
    const err = await rejected(
      () => mergeAdapterIntoModel(f.basePath, f.adapter, { out, dtype: "f16" }),
      "cast_overflow",
    );
    expect(err.message).toBe(
      'mergeAdapterIntoModel: tensor "wpe.weight" has 2 values beyond the F16 range (first: 70000 at index 3), which would be written as ±Inf; keep a wider dtype (--dtype f32 or bf16); no output was written',
    );
    expect(existsSync(out)).toBe(false);
    expect(temporaries(f.dir)).toEqual([]);
    await mergeAdapterIntoModel(f.basePath, f.adapter, { out, dtype: "bf16" });
    expect(parseSafetensors(readFileSync(out)).toFloat32("wpe.weight")[3]).toBe(70144); // 70000 in bf16
  });

  it("a merged weight that overflows f16 is refused too", async () => {
    const f = await mergeFixture(editedBase("h.0.attn.c_attn.weight", (v) => v.fill(65519.75)));
    const err = await rejected(
      () => mergeAdapterIntoModel(f.basePath, f.adapter, { out: join(f.dir, "m.safetensors"), dtype: "f16" }),
      "cast_overflow",
    );
    expect(err.message).toMatch(/^mergeAdapterIntoModel: tensor "h\.0\.attn\.c_attn\.weight" has \d+ values beyond/);
  });

  it("NaN in the base is reported naming the base, not the adapter", async () => {
    const f = await mergeFixture(
      editedBase("h.1.attn.c_proj.weight", (v) => {
        v[9] = Number.NaN;
      }),
    );
    const err = await rejected(
      () => mergeAdapterIntoModel(f.basePath, f.adapter, { out: join(f.dir, "m.safetensors") }),
      "non_finite",
    );
    expect(err.message).toBe(
      `mergeAdapterIntoModel: base tensor "h.1.attn.c_proj.weight" in ${f.basePath} has 1 non-finite values (first at [1, 1]) before the adapter is added: the base model is broken; no output was written`,
    );
    expect(err.message).not.toMatch(/adapter .* seems broken/);
  });

  it("an adapter that misses many modules is named in one short line: the first three and 'and N more'", async () => {
    const f = await mergeFixture();
    const modules = Array.from({ length: 36 }, (_, l) => ({
      path: `transformer.h.${l + 10}.attn.c_attn`,
      dIn: 8,
      dOut: 24,
      r: 4,
    }));
    const adapter = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(modules) });
    const err = await rejected(
      () => mergeAdapterIntoModel(f.basePath, adapter, { out: join(f.dir, "m.safetensors") }),
      "missing_tensor",
    );
    expect(err.message).toMatch(
      /^mergeAdapterIntoModel: 36 adapter module\(s\) have no tensor in the base model: "transformer\.h\.10\.attn\.c_attn" \(tried .*\); .*; and 33 more \(nothing was written\)$/,
    );
    expect(err.message.length).toBeLessThan(600);
    expect((err.details.missing as string[]).length).toBe(36);
  });
});

describe("lorakit merge: each refusal is one line, exit 2", () => {
  it("--out the base, '' and a FIFO; --dtype f16 overflow", async () => {
    const f = await mergeFixture(editedBase("wpe.weight", (v) => v.fill(1e6, 0, 1)));
    const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, "merge", ...args], { encoding: "utf8" });
    const fifo = join(f.dir, "pipe");
    execFileSync("mkfifo", [fifo]);
    const cases: [string[], RegExp][] = [
      [["--out", f.basePath], /\[output_is_input\]$/],
      [["--out", ""], /out is "", expected a file path; nothing was written \[invalid_output\]$/],
      [["--out", fifo], /is a FIFO .* \[invalid_output\]$/],
      [
        ["--out", join(f.dir, "m.safetensors"), "--dtype", "f16"],
        /tensor "wpe\.weight" has 1 values beyond the F16 range.* \[cast_overflow\]$/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = run("--base", f.basePath, "--adapter", f.adapterDir, "--quiet", ...args);
      expect(r.status, r.stderr).toBe(2);
      const lines = r.stderr.split("\n").filter((l) => l.length > 0);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^lorakit merge: mergeAdapterIntoModel: /);
      expect(lines[0]).toMatch(pattern);
    }
    expect(readFileSync(f.basePath)).toEqual(Buffer.from(f.baseBytes));
    expect(temporaries(f.dir)).toEqual([]);
  });
});

describe("makeFolder (mkdir -p without fs.mkdir's recursive option)", () => {
  it("creates every missing level, accepts an existing folder, and names the level it cannot create", () => {
    const root = mkdtempSync(join(tmpdir(), "lorakit-make-folder-"));
    const deep = join(root, "a", "b", "c");
    makeFolder(deep, "test");
    makeFolder(deep, "test");
    expect(statSync(deep).isDirectory()).toBe(true);
    writeFileSync(join(root, "file"), "x");
    expect(() => makeFolder(join(root, "file", "sub", "x"), "test")).toThrow(
      expect.objectContaining({
        code: "not_writable",
        message: `test: cannot create the folder ${join(root, "file", "sub")} (ENOTDIR)`,
      }),
    );
    rmSync(root, { recursive: true, force: true });
  });

  // fs.mkdir(p, { recursive: true }) never returns for such a path (Node 20, 22, 24): these would hang, not throw
  it.skipIf(!existsSync("/proc/self"))(
    "a path under /proc is refused at once, also by savePeftAdapterDir",
    async () => {
      expect(() => makeFolder("/proc/lorakit-nope/x", "test")).toThrow(
        expect.objectContaining({
          code: "not_writable",
          message: "test: cannot create the folder /proc/lorakit-nope (ENOENT)",
        }),
      );
      await expect(savePeftAdapterDir("/proc/lorakit-nope", [], { peft_type: "LORA", r: 1 })).rejects.toMatchObject({
        code: "not_writable",
      });
    },
  );
});

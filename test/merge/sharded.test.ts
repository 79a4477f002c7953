// Sharded base models (issue 12 item 10): the golden Llama base split at test time into three shards and a
// model.safetensors.index.json. A merge into the sharded base writes the same shards and a new index, and every
// tensor equals the merge into the unsharded base bit for bit; `inspect --base` and `merge --base` take the folder
// or the index; a failed merge leaves the previous output folder as it was; bad indexes get "invalid_index".

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseSafetensors } from "../../src/io/safetensors.js";
import { parseSafetensorsIndex, SAFETENSORS_INDEX_NAME } from "../../src/io/safetensors-index.js";
import { loadAdapter } from "../../src/node/adapter-files.js";
import type { OpenFile } from "../../src/node/atomic-write.js";
import { openBaseModel } from "../../src/node/base-model.js";
import { type MergeableAdapter, mergeAdapterIntoModel } from "../../src/node/merge.js";
import { REPO_ROOT } from "../peft/shared.js";
import { rejected, SHARDS, shard, temporaries } from "./setup.js";

const GOLDEN = [process.env.LORAKIT_SHARED, join(REPO_ROOT, "..", "shared"), join(REPO_ROOT, "..", "..", "shared")]
  .filter((p): p is string => p !== undefined)
  .map((p) => join(p, "fixtures", "peft-golden"))
  .find((p) => existsSync(join(p, "base", "llama", "model.safetensors")));
const MAIN = join(REPO_ROOT, "dist", "cli", "main.js");

describe.skipIf(GOLDEN === undefined)("sharded base models", () => {
  const work = mkdtempSync(join(tmpdir(), "lorakit-sharded-"));
  const baseFile = join(GOLDEN ?? "", "base", "llama", "model.safetensors");
  const adapterDir = join(GOLDEN ?? "", "peft-llama-basic", "adapter");
  const shardDir = join(work, "base");
  let weightMap: Map<string, string>;
  let adapter: MergeableAdapter;

  beforeAll(async () => {
    mkdirSync(shardDir);
    weightMap = shard(readFileSync(baseFile), shardDir);
    adapter = await loadAdapter(adapterDir);
  });

  it.each([undefined, "f16"] as const)(
    "merging into the shards equals merging into the single file (dtype %s)",
    async (dtype) => {
      const single = join(work, `single-${dtype}.safetensors`);
      const out = join(work, `sharded-${dtype}`);
      const opts = dtype === undefined ? {} : { dtype };
      const one = await mergeAdapterIntoModel(baseFile, adapter, { out: single, ...opts });
      const many = await mergeAdapterIntoModel(shardDir, adapter, { out, ...opts });
      expect(many.files).toEqual([...SHARDS, SAFETENSORS_INDEX_NAME]);
      expect([...many.merged]).toEqual([...one.merged]);
      expect(many.merged.size).toBeGreaterThan(0);
      expect(many.peakTensorBytes).toBe(one.peakTensorBytes);
      expect(readdirSync(out).sort()).toEqual([...SHARDS, SAFETENSORS_INDEX_NAME].sort());
      const whole = parseSafetensors(readFileSync(single));
      const index = parseSafetensorsIndex(readFileSync(join(out, SAFETENSORS_INDEX_NAME), "utf8"));
      expect(index.weightMap).toEqual(weightMap);
      let total = 0;
      for (const s of SHARDS) {
        const part = parseSafetensors(readFileSync(join(out, s)));
        const input = parseSafetensors(readFileSync(join(shardDir, s)));
        expect(part.names().sort()).toEqual(input.names().sort());
        expect(part.metadata).toEqual(input.metadata);
        for (const n of part.names()) {
          expect(part.info(n).dtype).toBe(whole.info(n).dtype);
          expect(Buffer.from(part.bytes(n)).equals(Buffer.from(whole.bytes(n))), n).toBe(true);
          total += part.bytes(n).length;
        }
      }
      expect(index.metadata).toEqual({ total_size: total, note: "kept" });
    },
  );

  it("the CLI takes the index file as --base; inspect --base reads the shards' headers", () => {
    const out = join(work, "cli-out");
    const r = spawnSync(
      process.execPath,
      [
        MAIN,
        "merge",
        "--base",
        join(shardDir, SAFETENSORS_INDEX_NAME),
        "--adapter",
        adapterDir,
        "--out",
        out,
        "--quiet",
      ],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*cli-out \(3 shards \+ index\): \d+ tensors, 4 merged/);
    const i = spawnSync(process.execPath, [MAIN, "inspect", adapterDir, "--base", shardDir], { encoding: "utf8" });
    expect(i.status, i.stderr).toBe(0);
    expect(i.stdout).toMatch(/of \d+ in .*base, 3 shards\)\n/);
    expect(i.stdout).not.toMatch(/missing/);
  });

  it("an output folder is replaced whole; one holding other files, the base folder, or a file are refused", async () => {
    const out = join(work, "replace");
    await mergeAdapterIntoModel(shardDir, adapter, { out });
    writeFileSync(join(out, "stale.safetensors"), "left from another run");
    await mergeAdapterIntoModel(shardDir, adapter, { out });
    expect(readdirSync(out).sort()).toEqual([...SHARDS, SAFETENSORS_INDEX_NAME].sort());
    writeFileSync(join(out, "config.json"), "{}");
    let err = await rejected(() => mergeAdapterIntoModel(shardDir, adapter, { out }), "invalid_output");
    expect(err.message).toMatch(/is a folder holding other files \(config\.json\), which replacing it would delete/);
    err = await rejected(() => mergeAdapterIntoModel(shardDir, adapter, { out: shardDir }), "output_is_input");
    expect(err.message).toMatch(/^mergeAdapterIntoModel: out .*base is the base model's .*base;/);
    err = await rejected(() => mergeAdapterIntoModel(shardDir, adapter, { out: baseFile }), "invalid_output");
    expect(err.message).toMatch(/is a file, expected a folder for the shards/);
  });

  it("a merge that fails on the second shard leaves the previous output folder exactly as it was", async () => {
    const out = join(work, "kept");
    await mergeAdapterIntoModel(shardDir, adapter, { out });
    const digest = () =>
      Object.fromEntries(
        readdirSync(out).map((n) => [
          n,
          createHash("sha256")
            .update(readFileSync(join(out, n)))
            .digest("hex"),
        ]),
      );
    const before = digest();
    let opened = 0;
    const failSecond: OpenFile = async (path, flags, mode) => {
      if (++opened === 2) throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
      return open(path, flags, mode);
    };
    await rejected(() => mergeAdapterIntoModel(shardDir, adapter, { out, openFile: failSecond }), "no_space");
    expect(digest()).toEqual(before);
    expect(temporaries(work)).toEqual([]);
  });

  it("indexes that disagree with their shards, or point outside their folder, are invalid_index", async () => {
    const cases: [(index: { weight_map: Record<string, string> }) => void, RegExp][] = [
      [
        (i) => (i.weight_map["model.norm.weight"] = SHARDS[0]!),
        /the index maps tensor "model\.norm\.weight" to model-00001-of-00003\.safetensors but it is in model-00003/,
      ],
      [
        (i) => (i.weight_map["nope.weight"] = SHARDS[0]!),
        /the index maps tensor "nope\.weight" to .* but no shard has it/,
      ],
      [
        (i) => delete i.weight_map["model.norm.weight"],
        /the index does not list tensor "model\.norm\.weight" of model-00003/,
      ],
      [
        (i) => (i.weight_map["model.norm.weight"] = "../model.safetensors"),
        /maps tensor "model\.norm\.weight" to "\.\.\/model\.safetensors", expected a \.safetensors file name in the index's folder/,
      ],
    ];
    for (const [edit, message] of cases) {
      const dir = mkdtempSync(join(work, "bad-"));
      shard(readFileSync(baseFile), dir);
      const index = JSON.parse(readFileSync(join(dir, SAFETENSORS_INDEX_NAME), "utf8"));
      edit(index);
      writeFileSync(join(dir, SAFETENSORS_INDEX_NAME), JSON.stringify(index));
      const err = await rejected(() => openBaseModel(dir), "invalid_index");
      expect(err.message).toMatch(message);
    }
    const dir = mkdtempSync(join(work, "bad-"));
    writeFileSync(join(dir, SAFETENSORS_INDEX_NAME), "{not json");
    expect((await rejected(() => openBaseModel(dir), "invalid_index")).message).toMatch(/index is not valid JSON/);
    const empty = mkdtempSync(join(work, "empty-"));
    expect((await rejected(() => openBaseModel(empty), "missing_file")).message).toMatch(
      /has neither model\.safetensors\.index\.json nor model\.safetensors$/,
    );
  });
});

// Interrupted merges (issue 11 item 11), with real child processes: SIGTERM or SIGINT during the write removes the
// temporary file and still ends the process by that signal; SIGKILL cannot be caught and leaves it, and the next
// merge into the same folder removes it (its writer is gone) and says so, while a live writer's temporary is kept.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { removeStaleTemporaries } from "../../src/node/atomic-write.js";
import { mergeAdapterIntoModel } from "../../src/node/merge.js";
import { REPO_ROOT } from "../peft/shared.js";
import { mergeFixture, SHARDS, shard, temporaries } from "./setup.js";

const CHILD = join(REPO_ROOT, "test", "merge", "interrupt-child.mjs");
const MAIN = join(REPO_ROOT, "dist", "cli", "main.js");

/** Starts a merge that stalls mid-write; resolves once its temporary file holds data. */
async function stalledMerge(base: string, adapterDir: string, out: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CHILD, base, adapterDir, out], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += d;
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      if (d.toString().includes("writing")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`child exited (${code}) before writing: ${stderr}`)));
  });
  return child;
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
}

describe("an interrupted merge", () => {
  it.each(["SIGTERM", "SIGINT"] as const)(
    "%s mid-write removes the temporary file; the output never appears",
    async (sig) => {
      const f = await mergeFixture();
      const out = join(f.dir, "merged.safetensors");
      const child = await stalledMerge(f.basePath, f.adapterDir, out);
      const [tmp] = temporaries(f.dir);
      expect(tmp).toMatch(new RegExp(`^\\.merged\\.safetensors\\.${child.pid}\\.[0-9a-f]{12}\\.tmp$`));
      expect(readFileSync(join(f.dir, tmp!)).length).toBeGreaterThan(0);
      child.kill(sig);
      expect(await exited(child)).toBe(sig);
      expect(temporaries(f.dir)).toEqual([]);
      expect(existsSync(out)).toBe(false);
    },
  );

  it("SIGKILL leaves it; the next merge into the folder removes it, says so, and keeps a live writer's", async () => {
    const f = await mergeFixture();
    const out = join(f.dir, "merged.safetensors");
    // The live writer starts first: a merge cleans the folder before it writes, so it would take the stale file.
    const live = await stalledMerge(f.basePath, f.adapterDir, join(f.dir, "other.safetensors"));
    const killed = await stalledMerge(f.basePath, f.adapterDir, out);
    killed.kill("SIGKILL");
    expect(await exited(killed)).toBe("SIGKILL");
    const stale = temporaries(f.dir).find((n) => n.startsWith(".merged."));
    expect(stale).toMatch(new RegExp(`^\\.merged\\.safetensors\\.${killed.pid}\\.[0-9a-f]{12}\\.tmp$`));
    try {
      const r = spawnSync(
        process.execPath,
        [MAIN, "merge", "--base", f.basePath, "--adapter", f.adapterDir, "--out", out, "--quiet"],
        {
          encoding: "utf8",
        },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe(
        `lorakit merge: removed stale temporary ${join(f.dir, stale!)} (its writer, process ${killed.pid}, is gone)\n`,
      );
      expect(existsSync(out)).toBe(true);
      const left = temporaries(f.dir);
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(new RegExp(`^\\.other\\.safetensors\\.${live.pid}\\.`));
    } finally {
      live.kill("SIGTERM");
      await exited(live);
    }
    expect(temporaries(f.dir)).toEqual([]);
  });

  it("SIGTERM during a sharded merge leaves the previous output folder as it was and no temporary folder", async () => {
    const f = await mergeFixture();
    const base = join(f.dir, "sharded");
    mkdirSync(base);
    shard(f.baseBytes, base);
    const out = join(f.dir, "merged");
    await mergeAdapterIntoModel(base, f.adapter, { out });
    const digest = () =>
      readdirSync(out)
        .sort()
        .map(
          (n) =>
            `${n}:${createHash("sha256")
              .update(readFileSync(join(out, n)))
              .digest("hex")}`,
        );
    const before = digest();
    writeFileSync(join(out, SHARDS[0]!), "an older first shard"); // so the interrupted merge would change something
    const changed = digest();
    const child = await stalledMerge(base, f.adapterDir, out);
    expect(temporaries(f.dir)).toEqual([
      expect.stringMatching(new RegExp(`^\\.merged\\.${child.pid}\\.[0-9a-f]{12}\\.tmp$`)),
    ]);
    child.kill("SIGTERM");
    expect(await exited(child)).toBe("SIGTERM");
    expect(temporaries(f.dir)).toEqual([]);
    expect(digest()).toEqual(changed);
    expect(changed).not.toEqual(before);
  });

  it("a folder swap cut short is put back: .<name>.<pid>.<hex>.old returns to <name> when <name> is missing", async () => {
    const f = await mergeFixture();
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    const old = join(f.dir, `.shards.${dead}.0123456789ab.old`);
    mkdirSync(old);
    writeFileSync(join(old, "model.safetensors.index.json"), "{}");
    const staleTmp = join(f.dir, `.shards.${dead}.ba9876543210.tmp`);
    mkdirSync(staleTmp);
    const done = await removeStaleTemporaries(f.dir);
    expect(done).toEqual([
      `restored ${join(f.dir, "shards")} from ${old}, left by an interrupted write (process ${dead} is gone)`,
      `removed stale temporary ${staleTmp} (its writer, process ${dead}, is gone)`,
    ]);
    expect(readFileSync(join(f.dir, "shards", "model.safetensors.index.json"), "utf8")).toBe("{}");
    expect(temporaries(f.dir)).toEqual([]);
  });
});

// What a merge may write, checked before it writes anything: `out` is a new path or a regular file (a folder of
// shards for a sharded base), never one of the files it reads (compared by device and inode, so a symlink or a hard
// link to the base is caught), in a folder that exists and is writable, on a file system with room for the output.

import type { Stats } from "node:fs";
import { constants } from "node:fs";
import { access, readdir, stat, statfs } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { FileWriteError } from "../errors.js";
import { SAFETENSORS_INDEX_NAME } from "../io/safetensors-index.js";
import { pathKind } from "./read-file.js";

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function invalidOutput(op: string, out: string, why: string): FileWriteError {
  return new FileWriteError("invalid_output", `${op}: out ${JSON.stringify(out)} ${why}; nothing was written`, {
    out,
  });
}

/** A folder of shards may be replaced only when it holds nothing but what a merge writes. */
async function requireShardFolder(op: string, out: string): Promise<void> {
  const others = (await readdir(out)).filter((n) => n !== SAFETENSORS_INDEX_NAME && !n.endsWith(".safetensors"));
  if (others.length === 0) return;
  const shown = others.slice(0, 3).join(", ") + (others.length > 3 ? ` and ${others.length - 3} more` : "");
  throw invalidOutput(
    op,
    out,
    `is a folder holding other files (${shown}), which replacing it would delete: give a new or empty folder, or one written by a merge`,
  );
}

/**
 * Checks `out` before a merge writes it.
 * @param inputs every file and folder the merge reads (base files, shards, the base folder)
 * @param kind "file" for a single-file base, "folder" for a sharded one (a folder of shards + index)
 * @throws {FileWriteError} "invalid_output" ('' or not a string, a folder where a file is expected or the reverse,
 *   a device, FIFO or socket, a missing folder), "output_is_input" (the same file as an input), "not_writable"
 */
export async function checkMergeOutput(
  op: string,
  out: string,
  inputs: readonly string[],
  kind: "file" | "folder",
): Promise<void> {
  if (typeof out !== "string" || out === "") {
    throw new FileWriteError(
      "invalid_output",
      `${op}: out is ${JSON.stringify(out)}, expected a ${kind === "file" ? "file" : "folder"} path; nothing was written`,
      { out },
    );
  }
  const st = await statOrUndefined(out);
  if (st !== undefined) {
    for (const input of inputs) {
      const ist = await statOrUndefined(input);
      if (ist === undefined || ist.dev !== st.dev || ist.ino !== st.ino) continue;
      const how = resolve(input) === resolve(out) ? "" : " (through a link)";
      throw new FileWriteError(
        "output_is_input",
        `${op}: out ${out} is the base model's ${input}${how}; writing it would replace what the merge reads — choose another path; nothing was written`,
        { out, input },
      );
    }
    if (kind === "file" && !st.isFile()) {
      const hint = st.isDirectory() ? ", expected a file path such as <folder>/model.safetensors" : "";
      throw invalidOutput(op, out, `is ${pathKind(st)}${hint} (only a regular file or a new path is written)`);
    }
    if (kind === "folder") {
      if (!st.isDirectory()) {
        throw invalidOutput(op, out, `is ${pathKind(st)}, expected a folder for the shards`);
      }
      await requireShardFolder(op, out);
    }
  }
  const dir = dirname(resolve(out));
  const dst = await statOrUndefined(dir);
  if (dst === undefined || !dst.isDirectory()) {
    throw invalidOutput(op, out, `is in ${dir}, which ${dst === undefined ? "does not exist" : "is not a folder"}`);
  }
  try {
    await access(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "EROFS" ? "the file system is read-only" : "permission denied";
    throw new FileWriteError(
      "not_writable",
      `${op}: cannot write ${out}: ${why} in folder ${dir} (${code}); nothing was written`,
      { out, errno: code },
    );
  }
}

function size(n: number): string {
  if (n < 2 ** 20) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

/**
 * Refuses to start a write of `bytes` when the file system holding `out` has less room for it.
 * @throws {FileWriteError} "no_space"
 */
export async function checkFreeSpace(op: string, out: string, bytes: number): Promise<void> {
  const dir = dirname(resolve(out));
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free >= bytes) return;
  throw new FileWriteError(
    "no_space",
    `${op}: ${out} needs ${size(bytes)} (${bytes} bytes) but ${dir} has ${size(free)} free; nothing was written`,
    { out, bytes, free },
  );
}

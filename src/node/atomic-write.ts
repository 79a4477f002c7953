// Writing outputs so that a failed or interrupted write leaves the old output (or none): everything goes to a
// temporary file or folder next to the target, `.<name>.<pid>.<hex>.tmp`, which is flushed and renamed over the
// target only when complete. The writer's pid in the name lets a later writer tell a stale temporary (its process is
// gone) from one still being written. While a temporary exists, SIGINT and SIGTERM remove it before the process
// ends. A folder replaced by writeFolderAtomic is first renamed to `.<name>.<pid>.<hex>.old`, and put back if the
// swap fails or is interrupted. File system errors become one-line FileWriteErrors (no_space, not_writable,
// invalid_output).

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { FileWriteError } from "../errors.js";
import { invalidArgument, optionsArg } from "../io/format-args.js";
import { requirePath } from "./path-arg.js";

/** Opens a file (the signature of fs.promises.open); the seam through which tests inject write errors. */
export type OpenFile = (path: string, flags: string, mode?: number) => Promise<FileHandle>;

/** Options of writeFileAtomic and writeFolderAtomic. */
export interface AtomicWriteOptions {
  /** Name used in error messages. */
  op?: string;
  /** Opens each file written (default: fs.promises.open). Tests pass a wrapper that fails like a full disk. */
  openFile?: OpenFile;
}

/** Bytes of one file: one buffer, or chunks produced one at a time. */
export type FileData = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

// `.<target name>.<pid>.<12 hex>.tmp` (being written) or `.old` (a replaced folder, removed after the swap).
const TEMP_NAME = /^\.(.+)\.(\d+)\.([0-9a-f]{12})\.(tmp|old)$/;

function siblingPath(path: string, kind: "tmp" | "old"): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.${kind}`);
}

// Temporaries this process is writing (removed on SIGINT/SIGTERM) and replaced folders to put back if interrupted.
const pending = new Set<string>();
const restoring = new Map<string, string>(); // .old path → target
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];

function onSignal(signal: NodeJS.Signals): void {
  for (const p of pending) rmSync(p, { recursive: true, force: true });
  for (const [old, target] of restoring) if (!existsSync(target)) renameSync(old, target);
  pending.clear();
  restoring.clear();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  // With no other listener the signal's default action (ending the process) must still happen.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function track(path: string): void {
  if (pending.size === 0 && restoring.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  pending.add(path);
}

function untrack(path: string): void {
  pending.delete(path);
  restoring.delete(path);
  if (pending.size === 0 && restoring.size === 0) for (const s of SIGNALS) process.removeListener(s, onSignal);
}

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

/** A file system error while writing `path` as a coded one-line error; other errors are returned unchanged. */
export function writeError(op: string, path: string, err: unknown): unknown {
  const code = errno(err);
  if (code === "ENOSPC" || code === "EDQUOT") {
    const what = code === "ENOSPC" ? "no space left on the device" : "the disk quota is exhausted";
    return new FileWriteError("no_space", `${op}: ${what} while writing ${path} (${code}); nothing was written`, {
      path,
      errno: code,
    });
  }
  if ((code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") && aboutTarget(path, err)) {
    const why =
      code === "EISDIR" ? "it is a folder" : `its folder ${dirname(path)} does not exist or cannot hold files`;
    return new FileWriteError("invalid_output", `${op}: cannot write ${path}: ${why} (${code}); nothing was written`, {
      path,
      errno: code,
    });
  }
  if ((code === "EACCES" || code === "EPERM" || code === "EROFS") && aboutTarget(path, err)) {
    const why = code === "EROFS" ? "the file system is read-only" : "permission denied";
    return new FileWriteError(
      "not_writable",
      `${op}: cannot write ${path}: ${why} in folder ${dirname(path)} (${code}); nothing was written`,
      { path, errno: code },
    );
  }
  return err;
}

// Whether a file system error names the target or its temporary (`.<name>.…` beside it, or a file inside it), and
// not some other path: a merge's chunks are read from the base while they are written, and a base that vanished
// (ENOENT) or cannot be read (EACCES) must not be reported as a problem of the output.
function aboutTarget(path: string, err: unknown): boolean {
  const e = err as { path?: unknown; dest?: unknown };
  const prefix = join(dirname(resolve(path)), `.${basename(path)}.`);
  return [e.path, e.dest].some(
    (p) => typeof p === "string" && (resolve(p) === resolve(path) || resolve(p).startsWith(prefix)),
  );
}

/**
 * Creates the folder `dir` and any missing parents, one level at a time, like `mkdir -p`. Not fs.mkdir with
 * { recursive: true }: for a path under /proc it never returns (Node 20, 22 and 24 retry the missing level forever).
 * @throws {FileWriteError} "not_writable" naming the level that could not be created and the system's code
 */
export function makeFolder(dir: string, op: string): void {
  requirePath(typeof op === "string" ? op : "makeFolder", "dir", dir);
  const missing: string[] = [];
  for (let at = resolve(dir); !existsSync(at); ) {
    missing.push(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const level of missing.reverse()) {
    try {
      mkdirSync(level);
    } catch (err) {
      if (errno(err) === "EEXIST" && statSync(level).isDirectory()) continue; // made meanwhile
      throw new FileWriteError("not_writable", `${op}: cannot create the folder ${level} (${errno(err) ?? err})`, {
        path: dir,
        errno: errno(err),
      });
    }
  }
}

// Removes a temporary after a failed write. Its own failure must not hide the write's error: when the folder is a
// file (ENOTDIR), rm's force option, which ignores only ENOENT, would throw.
async function removeQuietly(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch {
    // nothing was created there
  }
}

async function modeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mode & 0o7777;
  } catch {
    return undefined;
  }
}

// One read or write call moves at most 2^31 - 1 bytes in Node; chunks over 1 GiB are written in steps.
const MAX_IO_BYTES = 1 << 30;

/** Writes `data` to a new file `path` (which must not exist), keeps `mode` when given, and flushes it to disk. */
async function writeNewFile(openFile: OpenFile, path: string, data: FileData, mode?: number): Promise<void> {
  const fh = await openFile(path, "wx", mode ?? 0o666);
  try {
    for await (const chunk of data instanceof Uint8Array ? [data] : data) {
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, done, Math.min(chunk.length - done, MAX_IO_BYTES));
        done += bytesWritten;
      }
    }
    // The umask may have narrowed the mode given to open; a replaced file keeps exactly its own.
    if (mode !== undefined) await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes bytes (or a stream of chunks) to `path` atomically: into `.<name>.<pid>.<hex>.tmp` next to it, flushed to
 * disk, then renamed over `path`. A replaced file keeps its mode. On any failure, and on SIGINT/SIGTERM, the
 * temporary file is removed and `path` is left untouched.
 * @param data one buffer, or chunks produced one at a time (sync or async iterable)
 * @throws {FileWriteError} "no_space" (ENOSPC, EDQUOT), "not_writable" (EACCES, EPERM, EROFS), "invalid_output"
 *   (ENOENT, ENOTDIR: no such folder, or a file where a folder is needed; EISDIR); other errors as thrown
 */
export async function writeFileAtomic(path: string, data: FileData, options?: AtomicWriteOptions): Promise<void> {
  options = writeOptions("writeFileAtomic", options);
  const op = options.op ?? "writeFileAtomic";
  requirePath(op, "path", path);
  requireFileData(op, "data", data);
  const tmp = siblingPath(path, "tmp");
  track(tmp);
  try {
    await writeNewFile(options.openFile ?? open, tmp, data, await modeOf(path));
    await rename(tmp, path);
  } catch (err) {
    await removeQuietly(tmp);
    throw writeError(op, path, err);
  } finally {
    untrack(tmp);
  }
}

/** One file of a folder written by writeFolderAtomic. */
export interface FolderFile {
  name: string;
  data: FileData;
}

/**
 * Writes a folder atomically: every file into `.<name>.<pid>.<hex>.tmp/`, then the folder is renamed to `path`.
 * An existing folder at `path` is first renamed aside (`.old`) and removed once the new one is in place; if the
 * swap fails or is interrupted it is put back. Files replacing files of the old folder keep their modes.
 * @throws {FileWriteError} "no_space", "not_writable", "invalid_output" (as writeFileAtomic); other errors as thrown
 */
export async function writeFolderAtomic(
  path: string,
  files: Iterable<FolderFile>,
  options?: AtomicWriteOptions,
): Promise<void> {
  options = writeOptions("writeFolderAtomic", options);
  const op = options.op ?? "writeFolderAtomic";
  requirePath(op, "path", path);
  if (files === null || typeof files !== "object" || !(Symbol.iterator in files))
    throw invalidArgument(op, "files", files, "an iterable of { name, data }");
  const tmp = siblingPath(path, "tmp");
  const openFile = options.openFile ?? open;
  track(tmp);
  try {
    await mkdir(tmp, { mode: (await modeOf(path)) ?? 0o777 });
    let i = 0;
    for (const f of files) {
      requireFile(op, i++, f);
      await writeNewFile(openFile, join(tmp, f.name), f.data, await modeOf(join(path, f.name)));
    }
    if (!existsSync(path)) {
      await rename(tmp, path);
      return;
    }
    const old = siblingPath(path, "old");
    await rename(path, old);
    restoring.set(old, path);
    try {
      await rename(tmp, path);
    } catch (err) {
      await rename(old, path);
      throw err;
    } finally {
      restoring.delete(old);
    }
    await rm(old, { recursive: true, force: true });
  } catch (err) {
    await removeQuietly(tmp);
    throw writeError(op, path, err);
  } finally {
    untrack(tmp);
  }
}

/**
 * Writes several files into the folder `dir` so that a failure leaves no half-written set: every file is first
 * written to its own `.<name>.<pid>.<hex>.tmp` beside its target, and only when all are complete are they renamed
 * over their targets; other files in the folder are kept. On a failure before the renames the folder is left
 * exactly as it was, and a folder this call created (empty again) is removed. Missing parents are made as
 * makeFolder does.
 * @throws {FileWriteError} "no_space", "not_writable", "invalid_output" (as writeFileAtomic; a target that is a
 *   folder is refused before anything is renamed); makeFolder's "not_writable"; other errors as thrown
 */
export async function writeFilesAtomic(
  dir: string,
  files: readonly FolderFile[],
  options?: AtomicWriteOptions,
): Promise<void> {
  options = writeOptions("writeFilesAtomic", options);
  const op = options.op ?? "writeFilesAtomic";
  requirePath(op, "dir", dir);
  requireFiles(op, files);
  const created = !existsSync(dir);
  makeFolder(dir, op);
  const openFile = options.openFile ?? open;
  const temps: { tmp: string; target: string }[] = [];
  let at = dir;
  try {
    for (const f of files) {
      const target = join(dir, f.name);
      const tmp = siblingPath(target, "tmp");
      track(tmp);
      temps.push({ tmp, target });
      at = target;
      await writeNewFile(openFile, tmp, f.data, await modeOf(target));
    }
    // rename cannot put a file over a folder (EISDIR); refuse that before the first rename, not after it
    for (const t of temps) {
      at = t.target;
      if ((await stat(t.target).catch(() => null))?.isDirectory())
        throw Object.assign(new Error(`EISDIR: ${t.target}`), { code: "EISDIR", path: t.target });
    }
    for (const t of temps) {
      at = t.target;
      await rename(t.tmp, t.target);
    }
  } catch (err) {
    for (const t of temps) await removeQuietly(t.tmp);
    if (created) await rmdir(dir).catch(() => undefined); // only when empty: never what someone else put there
    throw writeError(op, at, err);
  } finally {
    for (const t of temps) untrack(t.tmp);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) === "EPERM"; // it exists, under another user
  }
}

/**
 * Cleans up after writers that were killed: in `dir`, removes every `.<name>.<pid>.<hex>.tmp` whose process is
 * gone, and puts back a `.<name>.<pid>.<hex>.old` folder whose swap was interrupted (or removes it when `<name>`
 * exists again). Temporaries of live processes, this one included, are left alone.
 * @returns one sentence per file removed or restored, for the caller to show
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const done: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || !Number.isSafeInteger(pid) || pid <= 0 || isAlive(pid)) continue;
    const path = join(dir, name);
    const target = join(dir, m[1]!);
    if (m[4] === "old" && !existsSync(target)) {
      await rename(path, target);
      done.push(`restored ${target} from ${path}, left by an interrupted write (process ${pid} is gone)`);
      continue;
    }
    await rm(path, { recursive: true, force: true });
    done.push(`removed stale temporary ${path} (its writer, process ${pid}, is gone)`);
  }
  return done;
}

// The writers' arguments, checked before anything is written: options (null: the defaults) with a string op,
// data as bytes or chunks, files as { name, data } with plain names.
function writeOptions(fn: string, v: unknown): AtomicWriteOptions {
  const o = optionsArg<AtomicWriteOptions>(fn, "options", v, "{ op?, openFile? }");
  if (o.op !== undefined && typeof o.op !== "string") throw invalidArgument(fn, "options.op", o.op, "a string");
  if (o.openFile !== undefined && typeof o.openFile !== "function")
    throw invalidArgument(fn, "options.openFile", o.openFile, "a function like fs/promises open");
  return o;
}

function requireFileData(op: string, name: string, v: unknown): void {
  const iterable = v !== null && typeof v === "object" && (Symbol.iterator in v || Symbol.asyncIterator in v);
  if (!(v instanceof Uint8Array) && !iterable)
    throw invalidArgument(op, name, v, "a Uint8Array or an (async) iterable of Uint8Array chunks");
}

function requireFile(op: string, i: number, f: unknown): asserts f is FolderFile {
  const name = (f as { name?: unknown } | null)?.name;
  if (typeof name !== "string" || name === "" || name === "." || name === ".." || /[/\\\0]/.test(name))
    throw invalidArgument(op, `files[${i}].name`, name, "a file name (no folder separators)");
  requireFileData(op, `files[${i}].data`, (f as { data?: unknown }).data);
}

function requireFiles(op: string, v: unknown): void {
  if (!Array.isArray(v)) throw invalidArgument(op, "files", v, "an array of { name, data }");
  for (let i = 0; i < v.length; i++) requireFile(op, i, v[i]);
}

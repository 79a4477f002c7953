// Reading a file that a loader expects, after checking what the path is, on the open descriptor: a FIFO would
// block the read until a writer comes (forever, for a forgotten `mkfifo`), and a folder fails with a raw EISDIR.
// The open is non-blocking so that opening a FIFO returns at once; regular files read as usual.

import { constants, type Stats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { AdapterFormatError } from "../errors.js";
import { requirePath } from "./path-arg.js";

/** What a path is, in words, for a message ("a folder", "a FIFO", ...). */
export function pathKind(st: Stats): string {
  if (st.isFile()) return "a file";
  if (st.isDirectory()) return "a folder";
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * Opens `path` for reading when it is a regular file. `hint` says what the file is for.
 * @throws {AdapterFormatError} "missing_file" when it does not exist or is a folder, FIFO, device or socket
 */
export async function openRegularFile(op: string, path: string, hint: string): Promise<FileHandle> {
  requirePath(op, "path", path);
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR")
      throw new AdapterFormatError("missing_file", `${op}: ${path} does not exist (${hint})`, { path });
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile())
      throw new AdapterFormatError("missing_file", `${op}: ${path} is ${pathKind(st)}, expected a file (${hint})`, {
        path,
        kind: pathKind(st),
      });
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Reads the whole of `path` when it is a regular file; errors as openRegularFile. */
export async function readRegularFile(op: string, path: string, hint: string): Promise<Uint8Array> {
  const fh = await openRegularFile(op, path, hint);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

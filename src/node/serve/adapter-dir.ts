// Where POST /v1/load_lora_adapter may read: only folders inside --adapter-dir. The requested path is resolved
// against the adapter folder, checked lexically, then resolved through every symlink (realpath) and checked again
// against the adapter folder's own real path; each file directly inside the chosen folder that is a symlink must
// also resolve inside it. A file swapped for a symlink between this check and the read is not caught (documented).

import { lstat, readdir, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { AdapterFormatError, ServeError } from "../../errors.js";

const OP = "load_lora_adapter";

function isInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel));
}

function refused(loraPath: string, why: string): ServeError {
  return new ServeError(
    "path_not_allowed",
    403,
    `${OP}: lora_path ${JSON.stringify(loraPath)} ${why}, expected a folder inside the server's adapter folder`,
    "lora_path",
  );
}

/**
 * The real path of --adapter-dir itself, checked at start-up (resolveAdapterPath's `adapterDir`).
 * @throws {AdapterFormatError} missing_file when it does not exist or is not a folder
 */
export async function adapterRoot(dir: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(dir);
  } catch (e) {
    throw new AdapterFormatError(
      "missing_file",
      `startServer: adapterDir ${dir} does not exist (${(e as NodeJS.ErrnoException).code ?? "unreadable"})`,
      { path: dir },
    );
  }
  if (!(await stat(real)).isDirectory())
    throw new AdapterFormatError("missing_file", `startServer: adapterDir ${dir} is not a folder`, { path: dir });
  return real;
}

/**
 * The real path of the adapter folder `loraPath` names (relative to `adapterDir`, or absolute inside it).
 * @param adapterDir the real path of --adapter-dir, or undefined when runtime loading is off
 * @throws {ServeError} 403 path_not_allowed (loading off, outside, escaping symlink), 404 missing_file,
 * 400 invalid_request (not a string, not a folder)
 */
export async function resolveAdapterPath(adapterDir: string | undefined, loraPath: unknown): Promise<string> {
  if (typeof loraPath !== "string" || loraPath === "" || loraPath.includes("\0"))
    throw new ServeError(
      "invalid_request",
      400,
      `${OP}: lora_path is ${JSON.stringify(loraPath) ?? String(loraPath)}, expected a folder path`,
      "lora_path",
    );
  if (adapterDir === undefined)
    throw new ServeError(
      "path_not_allowed",
      403,
      `${OP}: loading adapters at run time is off (start the server with --adapter-dir DIR to allow folders inside DIR)`,
      "lora_path",
    );
  const candidate = resolve(adapterDir, loraPath);
  if (!isInside(adapterDir, candidate)) throw refused(loraPath, "is outside the adapter folder");
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new ServeError(
      "missing_file",
      404,
      `${OP}: lora_path ${JSON.stringify(loraPath)} does not exist in the adapter folder`,
      "lora_path",
    );
  }
  if (!isInside(adapterDir, real)) throw refused(loraPath, "leads outside the adapter folder through a symlink");
  if (!(await stat(real)).isDirectory())
    throw new ServeError(
      "invalid_request",
      400,
      `${OP}: lora_path ${JSON.stringify(loraPath)} is a file, expected an adapter folder`,
      "lora_path",
    );
  for (const name of await readdir(real)) {
    const file = join(real, name);
    if (!(await lstat(file)).isSymbolicLink()) continue;
    const target = await realpath(file).catch(() => null);
    if (target === null || !isInside(adapterDir, target))
      throw refused(loraPath, `holds ${JSON.stringify(name)}, a symlink that leads outside the adapter folder`);
  }
  return real;
}

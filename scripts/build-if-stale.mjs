// Builds (npm run build) only when dist/ is missing or older than the sources, so `npm start`, `npm test` and the
// `prepare` of a git install skip the 20 s build when nothing changed. `npm run build` ends by writing
// dist/.build-stamp (this script with --stamp); the build is stale when the stamp or an entry point is missing, or
// when a file or folder among the sources (src/, cli/, scripts/, package.json, the tsconfigs) has a later mtime.
// Folders count so that a deleted file, which changes its folder's mtime, rebuilds too. Test files are ignored.
// A fresh clone has no dist/, so it builds.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The file `npm run build` writes last. */
export const STAMP = "dist/.build-stamp";
/** What the build must have produced: the library, the CLI and the browser bundle. */
export const OUTPUTS = ["dist/src/index.js", "dist/src/node/index.js", "dist/cli/main.js", "dist/browser/lorakit.js"];
/** What the build reads. */
export const SOURCES = ["src", "cli", "scripts", "package.json", "tsconfig.json", "tsconfig.build.json"];

/** The newest mtime (ms) under `path` and the path that has it; test files and node_modules are skipped. */
function newest(path, best = { mtimeMs: -Infinity, path: "" }) {
  if (!existsSync(path)) return best;
  const st = statSync(path);
  if (st.mtimeMs > best.mtimeMs) best = { mtimeMs: st.mtimeMs, path };
  if (!st.isDirectory()) return best;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.name === "node_modules" || /\.test\.[cm]?[jt]s$/.test(entry.name)) continue;
    best = newest(join(path, entry.name), best);
  }
  return best;
}

/** Why the build in `root` is stale (one line), or null when dist/ is newer than every source. */
export function staleReason(root = ROOT) {
  const stamp = join(root, STAMP);
  if (!existsSync(stamp)) return `${STAMP} is missing (never built, or the last build did not finish)`;
  const missing = OUTPUTS.find((o) => !existsSync(join(root, o)));
  if (missing) return `${missing} is missing`;
  const built = statSync(stamp).mtimeMs;
  let best = { mtimeMs: -Infinity, path: "" };
  for (const s of SOURCES) best = newest(join(root, s), best);
  if (best.mtimeMs > built) return `${best.path.slice(root.length).replace(/^[/\\]/, "")} changed after the last build`;
  return null;
}

/** Marks dist/ as built from the current sources. */
export function writeStamp(root = ROOT) {
  mkdirSync(join(root, "dist"), { recursive: true });
  writeFileSync(join(root, STAMP), `built ${new Date().toISOString()}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--stamp")) {
    writeStamp();
  } else {
    const reason = staleReason();
    if (reason !== null) {
      process.stderr.write(`lorakit: building (${reason})\n`);
      const npm = process.platform === "win32" ? "npm.cmd" : "npm";
      const r = spawnSync(npm, ["run", "build", "--silent"], {
        cwd: ROOT,
        stdio: "inherit",
        shell: process.platform === "win32",
      });
      process.exitCode = r.status ?? 1;
    }
  }
}

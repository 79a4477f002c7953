// scripts/build-if-stale.mjs decides when `npm start`, `npm test` and `prepare` rebuild: only when dist/ is missing
// or a source is newer than the last finished build. Checked on a small fake tree with mtimes set explicitly.

import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { OUTPUTS, STAMP, staleReason, writeStamp } from "../../scripts/build-if-stale.mjs";

const T0 = new Date("2026-01-01T00:00:00Z");
const LATER = new Date("2026-01-02T00:00:00Z");

function put(root: string, rel: string, when = T0): void {
  const file = join(root, rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, rel);
  utimesSync(file, when, when);
}

/** A tree as a fresh clone has it: sources with old mtimes (folders too), no dist/. */
function clone(): string {
  const root = mkdtempSync(join(tmpdir(), "lorakit-stale-"));
  for (const f of ["src/index.ts", "src/lora/forward.ts", "cli/main.ts", "scripts/bundle-browser.mjs"]) put(root, f);
  put(root, "src/lora/forward.test.ts");
  put(root, "package.json");
  for (const d of ["src/lora", "src", "cli", "scripts"]) utimesSync(join(root, d), T0, T0);
  return root;
}

/** What a finished build leaves: the outputs, then the stamp, newer than every source. */
function build(root: string): void {
  for (const o of OUTPUTS) put(root, o, LATER);
  writeStamp(root);
  utimesSync(join(root, STAMP), LATER, LATER);
}

describe("build-if-stale", () => {
  it("a fresh clone (no dist/) is stale; right after a build it is not", () => {
    const root = clone();
    expect(staleReason(root)).toBe(`${STAMP} is missing (never built, or the last build did not finish)`);
    build(root);
    expect(staleReason(root)).toBeNull();
    rmSync(root, { recursive: true });
  });

  it("a source edited after the build makes it stale, naming the file; a test file does not", () => {
    const root = clone();
    build(root);
    const NEWER = new Date("2026-01-03T00:00:00Z");
    utimesSync(join(root, "src/lora/forward.test.ts"), NEWER, NEWER);
    expect(staleReason(root)).toBeNull();
    utimesSync(join(root, "cli/main.ts"), NEWER, NEWER);
    expect(staleReason(root)).toBe("cli/main.ts changed after the last build");
    rmSync(root, { recursive: true });
  });

  it("a deleted source (its folder's mtime changes) or a missing output makes it stale", () => {
    const root = clone();
    build(root);
    rmSync(join(root, "src/lora/forward.ts"));
    expect(staleReason(root)).toBe("src/lora changed after the last build");
    utimesSync(join(root, "src/lora"), T0, T0);
    expect(staleReason(root)).toBeNull();
    rmSync(join(root, "dist/browser/lorakit.js"));
    expect(staleReason(root)).toBe("dist/browser/lorakit.js is missing");
    rmSync(root, { recursive: true });
  });
});

// What an installer gets: the files the package ships (LICENSE included), a `prepare` that builds a git install,
// and types for each entry point, "lorakit/browser" included (resolved as TypeScript resolves it for a user).

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  license: string;
  files: string[];
  scripts: Record<string, string>;
  exports: Record<string, string | { types?: string; default: string }>;
};

describe("the published package", () => {
  it("ships an MIT LICENSE file", () => {
    expect(pkg.license).toBe("MIT");
    expect(readFileSync(join(ROOT, "LICENSE"), "utf8")).toMatch(/^MIT License\n\nCopyright \(c\) /);
    expect(pkg.files).toContain("LICENSE");
  });

  it("npm pack lists LICENSE, README.md, the built entry points and their types", () => {
    const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    for (const f of ["LICENSE", "README.md", "package.json", "dist/src/index.js", "dist/src/index.d.ts"])
      expect(files, f).toContain(f);
    for (const f of ["dist/cli/main.js", "dist/browser/lorakit.js", "dist/src/node/index.d.ts"])
      expect(files, f).toContain(f);
    expect(files.some((f) => f.startsWith("src/") || f.startsWith("test/"))).toBe(false);
  });

  it("has a prepare script that builds (a git install has no dist/ until it runs)", () => {
    expect(pkg.scripts.prepare).toBe("node scripts/build-if-stale.mjs");
    expect(pkg.scripts.build).toMatch(/node scripts\/build-if-stale\.mjs --stamp$/);
  });

  it.each([
    ["lorakit", "dist/src/index.d.ts"],
    ["lorakit/node", "dist/src/node/index.d.ts"],
    ["lorakit/browser", "dist/src/index.d.ts"],
  ])("TypeScript resolves the types of %s to %s", (specifier, types) => {
    expect(existsSync(join(ROOT, types)), `${types} (run npm run build)`).toBe(true);
    const options = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext };
    // a module inside the package resolves the package's own name through "exports", as a user's import does
    const from = join(ROOT, "consumer.mts");
    const r = ts.resolveModuleName(specifier, from, options, ts.sys);
    expect(r.resolvedModule?.resolvedFileName).toBe(join(ROOT, types));
  });
});

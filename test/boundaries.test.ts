// Checks the import rules of STYLE.md §2 mechanically: which folder may import which, node:* only under
// src/node/, PEFT's tensor names only in src/io/peft-keys.ts, no Math.random or console in library code.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === "generated" ? [] : files(p);
    return /\.ts$/.test(name) && !/\.test\.ts$/.test(name) ? [p] : [];
  });
}

// Folder (relative to src/) → the src/ paths its files may import. A folder may always import itself.
const ALLOWED: [string, string[]][] = [
  ["errors.ts", []],
  ["shape.ts", ["errors.ts"]],
  ["matrix.ts", ["errors.ts", "shape.ts"]],
  ["dtype/", ["errors.ts"]],
  // Kernels validate nothing; only the thread pool raises (KernelError, when a worker fails or times out).
  ["kernels/", ["errors.ts"]],
  ["lora/", ["kernels/", "errors.ts", "shape.ts", "matrix.ts"]],
  ["io/", ["errors.ts", "shape.ts", "matrix.ts", "dtype/", "kernels/", "lora/"]],
  ["train/", ["errors.ts", "shape.ts", "matrix.ts", "kernels/", "lora/", "io/"]],
  ["model/", ["errors.ts", "shape.ts", "matrix.ts", "kernels/", "lora/", "io/"]],
  // the server core: no model math of its own; the seeded generator from lora/, the runtime from model/
  ["serve/", ["errors.ts", "lora/rng.ts", "model/"]],
  [
    "node/",
    [
      "errors.ts",
      "shape.ts",
      "matrix.ts",
      "dtype/",
      "kernels/",
      "lora/",
      "io/",
      "train/",
      "model/",
      "serve/",
      "index.ts",
    ],
  ],
  ["index.ts", ["errors.ts", "shape.ts", "matrix.ts", "dtype/", "kernels/", "lora/", "io/", "train/"]],
];

function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g)].map(
    (m) => (m[1] ?? m[2])!,
  );
}

function code(file: string): string {
  // strip comments so prose about Math.random or lora_A does not count
  return readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:"'])\/\/.*$/gm, "$1");
}

describe("module boundaries (STYLE.md §2)", () => {
  const src = join(ROOT, "src");
  const srcFiles = files(src);

  it.each(srcFiles.map((f) => [relative(ROOT, f), f]))("%s imports only what its tier may", (_rel, file) => {
    const rel = relative(src, file).replaceAll("\\", "/");
    const rule = ALLOWED.find(([folder]) => rel === folder || rel.startsWith(folder));
    expect(rule, `no rule for src/${rel}`).toBeDefined();
    const [folder, allowed] = rule!;
    for (const spec of imports(file)) {
      if (spec.startsWith("node:")) {
        expect(folder, `src/${rel} imports ${spec}; node:* is only allowed under src/node/`).toBe("node/");
        continue;
      }
      expect(
        spec.startsWith("."),
        `src/${rel} imports the package "${spec}"; the core has no runtime dependencies`,
      ).toBe(true);
      const target = relative(src, resolve(dirname(file), spec))
        .replace(/\.js$/, ".ts")
        .replaceAll("\\", "/");
      const ok = target.startsWith(folder) || allowed.some((a) => target === a || target.startsWith(a));
      expect(ok, `src/${rel} may not import src/${target} (allowed: ${[folder, ...allowed].join(", ")})`).toBe(true);
    }
  });

  it("only src/io/peft-keys.ts names PEFT's lora_A / lora_B tensors", () => {
    const offenders = srcFiles.filter((f) => /lora_[AB]\b/.test(code(f)) && !f.endsWith(join("io", "peft-keys.ts")));
    expect(offenders.map((f) => relative(ROOT, f))).toEqual([]);
  });

  it("library code never calls Math.random or console.*", () => {
    const offenders = srcFiles.filter((f) => /Math\.random|console\./.test(code(f)));
    expect(offenders.map((f) => relative(ROOT, f))).toEqual([]);
  });

  it("the CLI imports only the package's public entries", () => {
    for (const file of files(join(ROOT, "cli"))) {
      for (const spec of imports(file)) {
        const ok =
          spec.startsWith("node:") ||
          spec.startsWith("./") ||
          spec === "../src/index.js" ||
          spec === "../src/model/index.js" ||
          spec === "../src/node/index.js";
        expect(ok, `${relative(ROOT, file)} imports ${spec}`).toBe(true);
      }
    }
  });
});

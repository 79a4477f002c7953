// The README against the code it describes: every ErrorCode of src/errors.ts in the README's error tables exactly
// once, the quick start's printed output equal to what `npm start` (`lorakit forward --explain`) prints, and every
// relative link in README.md and docs/*.md naming a file that exists.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { lorakit } from "../cli/helpers.js";
import { REPO_ROOT } from "../helpers/shared.js";

const README = readFileSync(join(REPO_ROOT, "README.md"), "utf8");

/** The string literals of `export type ErrorCode = | "a" | "b" …;` in src/errors.ts. */
function errorCodesOf(errorsTs: string): string[] {
  const code = errorsTs.replace(/\/\/[^\n]*/g, ""); // comments may hold a ";"
  const union = /export type ErrorCode =([^;]*);/.exec(code)?.[1] ?? "";
  return [...union.matchAll(/"([a-z0-9_]+)"/g)].map((m) => m[1]!);
}

/** Every backticked code in the first cell of the table rows under the README's "## Errors" heading. */
function tableCodesOf(readme: string): string[] {
  const section = /\n## Errors\n([\s\S]*?)(?=\n## )/.exec(readme)?.[1] ?? "";
  const codes: string[] = [];
  for (const line of section.split("\n")) {
    const first = /^\|([^|]*)\|/.exec(line)?.[1];
    if (first === undefined) continue;
    for (const m of first.matchAll(/`([a-z0-9_]+)`/g)) codes.push(m[1]!);
  }
  return codes;
}

/** [code, times listed] for each code that is not listed exactly once, and the listed codes the union lacks. */
function tableProblems(codes: string[], listed: string[]): { counts: [string, number][]; unknown: string[] } {
  const count = (c: string) => listed.filter((l) => l === c).length;
  return {
    counts: codes.map((c) => [c, count(c)] as [string, number]).filter(([, n]) => n !== 1),
    unknown: [...new Set(listed.filter((l) => !codes.includes(l)))],
  };
}

describe("README error tables", () => {
  const codes = errorCodesOf(readFileSync(join(REPO_ROOT, "src", "errors.ts"), "utf8"));

  it("reads the ErrorCode union (sanity: the parser finds codes we know)", () => {
    expect(codes.length).toBeGreaterThanOrEqual(40);
    expect(codes).toContain("shape_mismatch");
    expect(codes).toContain("out_of_memory");
  });

  it("list every ErrorCode exactly once, and nothing else", () => {
    expect(tableProblems(codes, tableCodesOf(README))).toEqual({ counts: [], unknown: [] });
  });

  it("the check fails on a missing, a repeated and an unknown code", () => {
    const readme =
      "x\n## Errors\n| code | class |\n| --- | --- |\n| `a`, `b` | X |\n| `b` | Y |\n| `z` | Z |\n## Next\n";
    expect(tableProblems(["a", "b", "c"], tableCodesOf(readme))).toEqual({
      counts: [
        ["b", 2],
        ["c", 0],
      ],
      unknown: ["z"],
    });
  });
});

describe("README quick start", () => {
  it("shows exactly what `npm start` (lorakit forward --explain) prints on stdout", () => {
    const block = /`npm start` runs[\s\S]*?\n```\n([\s\S]*?)```/.exec(README)?.[1];
    expect(block, "the quick start's output block").toBeDefined();
    const start = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).scripts.start as string;
    expect(start).toMatch(/node dist\/cli\/main\.js forward --explain$/);
    const r = lorakit(["forward", "--explain"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(block);
  });
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The anchors of a Markdown file's headings (outside code blocks). */
function anchorsOf(path: string): Set<string> {
  const text = readFileSync(path, "utf8").replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

/** The relative links of a Markdown file (outside code blocks) whose file or heading does not exist. */
function brokenLinks(file: string): string[] {
  const text = readFileSync(join(REPO_ROOT, file), "utf8").replace(/```[\s\S]*?```/g, "");
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((href) => !/^[a-z]+:/.test(href))
    .filter((href) => {
      const [path = "", anchor] = href.split("#");
      const target = path === "" ? join(REPO_ROOT, file) : join(REPO_ROOT, dirname(file), decodeURI(path));
      if (!existsSync(target)) return true;
      return anchor !== undefined && target.endsWith(".md") && !anchorsOf(target).has(anchor);
    });
}

describe("docs links", () => {
  const files = ["README.md", "BENCHMARKS.md", ...readdirSync(join(REPO_ROOT, "docs")).map((f) => `docs/${f}`)];
  it.each(files.filter((f) => f.endsWith(".md")))(
    "%s: every relative link names an existing file and heading",
    (file) => {
      expect(brokenLinks(file)).toEqual([]);
    },
  );

  it("slug follows GitHub's rule", () => {
    expect(slug("`loraForward(x, W, B, A, alpha, options?)`")).toBe("loraforwardx-w-b-a-alpha-options");
    expect(slug("Naming: mission B/A vs PEFT lora_A/lora_B")).toBe("naming-mission-ba-vs-peft-lora_alora_b");
  });
});

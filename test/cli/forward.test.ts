// Runs the built CLI (dist/cli/main.js; `npm test` builds first) as a user would.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

function lorakit(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const T3 = { x: [[2]], W: [[3]], B: [[1]], A: [[1]], alpha: 4 };

describe("lorakit forward", () => {
  it("runs the embedded default (mission example 1) and says so", () => {
    const r = lorakit(["forward"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([[4, 5]]);
    expect(r.stderr).toContain("running the embedded default (mission example 1");
  });

  it("--explain prints the steps, then the result", () => {
    const r = lorakit(["forward", "--explain"]);
    expect(r.code).toBe(0);
    const steps = ["1. Frozen path", "2. Low-rank path", "3. Rank", "4. Scaling", "5. Combine"].map((s) =>
      r.stdout.indexOf(s),
    );
    expect(steps.every((i, k) => i >= 0 && (k === 0 || i > steps[k - 1]!))).toBe(true);
    expect(r.stdout).toContain("x @ W = [[1.0, 2.0]] @ [[1.0, 0.0], [0.0, 1.0]] = [[1.0, 2.0]]");
    expect(r.stdout.trim().split("\n").at(-1)).toBe("[[4,5]]");
  });

  it("reads a file", () => {
    const dir = mkdtempSync(join(tmpdir(), "lorakit-"));
    const file = join(dir, "in.json");
    writeFileSync(file, JSON.stringify(T3));
    const r = lorakit(["forward", "--input", file]);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, "[[14]]\n", ""]);
  });

  it("reads stdin with --input -", () => {
    const r = lorakit(["forward", "--input", "-", "--explain"], JSON.stringify(T3));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("x @ W = [[2.0]] @ [[3.0]] = [[6.0]]");
    expect(r.stdout).toContain("= [[6.0]] + 4.0 * [[2.0]] = [[14.0]]");
  });

  it("reads the input named by a positional FILE, and stdin for -", () => {
    const dir = mkdtempSync(join(tmpdir(), "lorakit-"));
    const file = join(dir, "in.json");
    writeFileSync(file, JSON.stringify(T3));
    expect(lorakit(["forward", file])).toEqual({ code: 0, stdout: "[[14]]\n", stderr: "" });
    expect(lorakit(["forward", "-"], JSON.stringify({ ...T3, alpha: 2 }))).toEqual({
      code: 0,
      stdout: "[[10]]\n",
      stderr: "",
    });
  });

  it.each([
    ["x·W overflows", { x: [[1e308]], W: [[10]], B: [[1]], A: [[0]], alpha: 1 }, "0, 0", "Infinity"],
    ["the sum overflows", { x: [[1e308, 1]], W: [[1], [0]], B: [[1], [0]], A: [[-1]], alpha: -1 }, "0, 0", "Infinity"],
    ["Infinity - Infinity", { x: [[0, 1e308]], W: [[1], [10]], B: [[0], [-10]], A: [[1]], alpha: 1 }, "0, 0", "NaN"],
    ["a later entry", { x: [[1], [-1e308]], W: [[1, 1e10]], B: [[1]], A: [[0, 1]], alpha: 1 }, "1, 1", "-Infinity"],
  ])(
    "a result that overflows from finite inputs (%s) is a coded error naming the entry, not null",
    (_n, doc, at, v) => {
      for (const extra of [[], ["--explain"]]) {
        const r = lorakit(["forward", "-", ...extra], JSON.stringify(doc));
        expect(r.code).toBe(2);
        expect(r.stdout).toBe("");
        expect(r.stderr).toBe(
          `lorakit forward: h[${at}] is ${v}: the inputs are finite but the result overflows float64 (|h| > 1.8e308), which JSON cannot carry [non_finite]\n`,
        );
      }
    },
  );

  it("--rslora and --precision", () => {
    const I2 = [
      [1, 0],
      [0, 1],
    ];
    const r = lorakit(
      ["forward", "--input", "-", "--rslora", "--precision", "3"],
      JSON.stringify({ x: [[1, 2]], W: I2, B: I2, A: I2, alpha: 2 }),
    );
    expect([r.code, r.stdout]).toEqual([0, "[[2.414,4.828]]\n"]);
  });

  it("--help exits 0 and lists the options", () => {
    const r = lorakit(["forward", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "Usage: lorakit forward [FILE | - | --input FILE] [--explain] [--rslora] [--precision N]",
    );
  });

  it.each([
    ["malformed JSON", ["--input", "-"], "{x:", /^lorakit forward: stdin: malformed JSON \(/],
    [
      "a missing field",
      ["--input", "-"],
      JSON.stringify({ ...T3, alpha: undefined }),
      /^lorakit forward: stdin: missing field "alpha" \(expected a number\)$/,
    ],
    [
      "a missing matrix",
      ["--input", "-"],
      JSON.stringify({ x: [[1]], W: [[1]], A: [[1]], alpha: 1 }),
      /^lorakit forward: stdin: missing field "B" \(expected a matrix as an array of rows\)$/,
    ],
    [
      "not an object",
      ["--input", "-"],
      "[1]",
      /^lorakit forward: stdin: expected a JSON object \{"x", "W", "B", "A", "alpha"\}, got an array$/,
    ],
    [
      "a shape error",
      ["--input", "-"],
      JSON.stringify({ ...T3, A: [[1, 2]] }),
      /^lorakit forward: loraForward: A has shape \[1, 2\], expected \[1, 1\] because W is \[1, 1\] \(dOut = 1\) \[shape_mismatch\]$/,
    ],
    [
      "a non-number",
      ["--input", "-"],
      JSON.stringify({ ...T3, x: [["2"]] }),
      /^lorakit forward: loraForward: x\[0, 0\] is a string \("2"\), expected a finite number \[invalid_value\]$/,
    ],
    [
      "a missing file",
      ["--input", "no-such-file.json"],
      undefined,
      /^lorakit forward: cannot read no-such-file.json: ENOENT/,
    ],
    [
      "an unknown flag",
      ["--frobnicate"],
      undefined,
      /^lorakit forward: unknown option --frobnicate \(see 'lorakit forward --help'\)$/,
    ],
    [
      "a bad --precision",
      ["--precision", "x"],
      undefined,
      /^lorakit forward: --precision must be a non-negative integer, got "x"$/,
    ],
    [
      "a negative --precision",
      ["--precision", "-1"],
      undefined,
      /^lorakit forward: --precision must be a non-negative integer, got "-1"$/,
    ],
    [
      "a missing value",
      ["--input"],
      undefined,
      /^lorakit forward: --input needs a value \(see 'lorakit forward --help'\)$/,
    ],
    [
      "an option where a value should be",
      ["--input", "--explain"],
      undefined,
      /^lorakit forward: --input needs a value, got the option "--explain" \(write --input=--explain if that is the value\)/,
    ],
    [
      "two inputs",
      ["a.json", "-"],
      undefined,
      /^lorakit forward: expected one input \(FILE, - or --input FILE\), got "a.json", "-"/,
    ],
  ])("%s is an input error: exit 2, one line on stderr, no stack", (_name, args, input, message) => {
    const r = lorakit(["forward", ...args], input);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });

  it("--debug adds the stack trace", () => {
    const r = lorakit(["forward", "--input", "-", "--debug"], JSON.stringify({ ...T3, A: [[1, 2]] }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  it("unknown commands and no command are usage errors", () => {
    expect(lorakit(["frobnicate"]).code).toBe(2);
    expect(lorakit(["frobnicate"]).stderr).toMatch(/^lorakit: unknown command "frobnicate" \(commands: /);
    const none = lorakit([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain("Usage: lorakit <command>");
  });
});

// The CLI's entry: version, help, "did you mean", a closed stdout, and which stream decides the progress style.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { editDistance, suggest } from "../../cli/suggest.js";
import { processIo } from "../../cli/usage.js";
import { loadPeftAdapter } from "../../src/io/peft-adapter.js";
import { savePeftAdapterDir } from "../../src/node/adapter-files.js";
import { adapterBytes, GPT2_CONFIG, gpt2BaseBytes, gpt2Modules } from "../peft/synthetic.js";
import { BIN, lorakit, lorakitStdoutClosed } from "./helpers.js";

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

describe("lorakit version and help", () => {
  it.each([["--version"], ["-v"], ["version"]])("%s prints the package.json version, exit 0", (word) => {
    expect(lorakit([word])).toEqual({ code: 0, stdout: `lorakit ${VERSION}\n`, stderr: "" });
  });

  it("--help lists the commands, help and version with their spellings", () => {
    const r = lorakit(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\n {2}forward {9}run the LoRA forward pass/);
    expect(r.stdout).toMatch(/\n {2}help \[command\] {2}show this help, or a command's \(also --help, -h\)\n/);
    expect(r.stdout).toMatch(/\n {2}version {9}print lorakit's version \(also --version, -v\)\n/);
  });

  it("help COMMAND prints that command's help", () => {
    const r = lorakit(["help", "inspect"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: lorakit inspect </);
  });
});

describe('"did you mean"', () => {
  it.each([
    ["forwrd", "forward"],
    ["froward", "forward"],
    ["inspct", "inspect"],
    ["merg", "merge"],
    ["trian", "train"],
    ["verison", "version"],
    ["FORWARD", "forward"],
  ])("lorakit %s suggests %s", (typo, word) => {
    const r = lorakit([typo]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `lorakit: unknown command "${typo}" (did you mean "${word}"?) (commands: convert, forward, generate, inspect, merge, serve, train; see 'lorakit --help')\n`,
    );
  });

  it("lorakit help with an unknown topic is the unknown-command error, with its suggestion (exit 2)", () => {
    const r = lorakit(["help", "merg"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^lorakit: unknown command "merg" \(did you mean "merge"\?\) \(commands: [a-z, ]+; /);
    expect(r.stderr).toBe(lorakit(["merg"]).stderr);
  });

  it.each([
    [["forward", "--precison", "2"], "forward", "--precison", " (did you mean --precision?)"],
    [["inspect", "x", "--jsno"], "inspect", "--jsno", " (did you mean --json?)"],
    [["forward", "--frobnicate"], "forward", "--frobnicate", ""],
  ])("an unknown option %j is named, with the closest known option", (args, command, option, hint) => {
    const r = lorakit(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`lorakit ${command}: unknown option ${option}${hint} (see 'lorakit ${command} --help')\n`);
  });

  it("suggests nothing for a word close to no command", () => {
    expect(lorakit(["frobnicate"]).stderr).not.toContain("did you mean");
    expect(suggest("x", ["forward", "merge"])).toBeUndefined();
    expect(suggest("zzzzz", ["forward", "merge"])).toBeUndefined();
  });

  it("edit distance counts insertions, deletions, substitutions and swaps of neighbours", () => {
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("forwrd", "forward")).toBe(1);
    expect(editDistance("froward", "forward")).toBe(1);
    expect(editDistance("trian", "train")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
  });
});

describe("a stdout closed by its reader (| head -1)", () => {
  it.each([
    ["forward --explain", ["forward", "--explain"]],
    ["--help", ["--help"]],
  ])("%s exits 0 with nothing on stderr", async (_name, args) => {
    const r = await lorakitStdoutClosed(args);
    // forward says on stderr that it runs the embedded default; nothing else may appear (no EPIPE stack)
    expect(r.stderr.replace(/^lorakit forward: no input given;.*\n/, "")).toBe("");
    expect(r.code).toBe(0);
  });
});

describe("progress style follows stderr, where it is drawn", () => {
  const saved = { out: process.stdout.isTTY, err: process.stderr.isTTY };
  afterEach(() => {
    process.stdout.isTTY = saved.out;
    process.stderr.isTTY = saved.err;
  });

  it("processIo().isTTY is stderr's, not stdout's", () => {
    process.stdout.isTTY = false;
    process.stderr.isTTY = true;
    expect(processIo().isTTY).toBe(true);
    process.stdout.isTTY = true;
    process.stderr.isTTY = false;
    expect(processIo().isTTY).toBe(false);
  });

  const hasScript = spawnSync("script", ["--version"]).status === 0;
  it.skipIf(!hasScript)(
    "merge draws the bar when stderr is a terminal and stdout is not, and not the reverse",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "lorakit-tty-"));
      const adapterDir = join(dir, "adapter");
      const a = loadPeftAdapter({ config: GPT2_CONFIG, weights: adapterBytes(gpt2Modules(2, 8, 4)) });
      await savePeftAdapterDir(adapterDir, a.modules, a.config);
      const base = join(dir, "model.safetensors");
      writeFileSync(base, gpt2BaseBytes(2, 8));
      const merge = (out: string) =>
        `'${process.execPath}' '${BIN}' merge --base '${base}' --adapter '${adapterDir}' --out '${join(dir, out)}'`;
      // `script` runs the command on a pseudo-terminal and copies what the terminal shows to its stdout
      const ttyErr = spawnSync(
        "script",
        ["-qec", `${merge("a.safetensors")} > '${join(dir, "out.txt")}'`, "/dev/null"],
        {
          encoding: "utf8",
        },
      );
      expect(ttyErr.status).toBe(0);
      expect(ttyErr.stdout).toMatch(/\r\[#{30}\] 100% 15\/15 tensors/);
      expect(readFileSync(join(dir, "out.txt"), "utf8")).toMatch(/^wrote .*a\.safetensors: 15 tensors/);
      const ttyOut = spawnSync(
        "script",
        ["-qec", `${merge("b.safetensors")} 2> '${join(dir, "err.txt")}'`, "/dev/null"],
        {
          encoding: "utf8",
        },
      );
      expect(ttyOut.status).toBe(0);
      const err = readFileSync(join(dir, "err.txt"), "utf8");
      expect(err).toMatch(/^merge: \d+\/15 tensors, /);
      expect(err).not.toContain("\r");
    },
  );
});

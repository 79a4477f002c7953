// Kernel threads under the host's own flags, in child processes on the built kernels in dist/ (npm test builds
// first): workers get execArgv [] and reach worker_threads without require, so --input-type=module (on the command
// line reading stdin, in NODE_OPTIONS, or on a worker_thread that uses the kernels) does not break them; under Node's permission model without
// --allow-worker, `new Worker` throws, threads turn off with one warning and a kernelInfo().threadError, and every
// product still completes on the calling thread (no raw ERR_ACCESS_DENIED).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const child = fileURLToPath(new URL("../../../test/kernels/threads-child.mjs", import.meta.url));
const dist = new URL("../../../dist/src/", import.meta.url).href; // ends with "/"

interface Report {
  same: boolean;
  exact: boolean;
  info: { threads: number; maxThreads: number; threadError?: string };
  ready: number;
  threadError: string | null;
}

function run(args: string[], env: Record<string, string> = {}, stdin?: string) {
  const r = spawnSync(process.execPath, args, {
    encoding: "utf8",
    timeout: 120_000,
    input: stdin,
    env: { ...process.env, LORAKIT_DIST: dist, ...env },
  });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  expect(r.status, `${r.stderr}\n${r.stdout}`).toBe(0);
  return { report: JSON.parse(line) as Report, stderr: r.stderr };
}

function expectThreaded(report: Report): void {
  expect(report).toEqual({
    same: true,
    exact: true,
    info: expect.objectContaining({ threads: 2 }),
    ready: 1,
    threadError: null,
  });
  expect(report.info.threadError).toBeUndefined();
}

describe("kernel threads under host flags", () => {
  const source = readFileSync(child, "utf8");

  it("start with --input-type=module reading the script from stdin", () => {
    expectThreaded(run(["--input-type=module", "-"], {}, source).report);
  });

  it("start with NODE_OPTIONS=--input-type=module", () => {
    expectThreaded(run(["-"], { NODE_OPTIONS: "--input-type=module" }, source).report);
  });

  it("start inside a worker_thread that was itself started with --input-type=module", () => {
    const parent = `
      const { Worker } = require("node:worker_threads");
      const w = new Worker(${JSON.stringify(source)}, { eval: true, execArgv: ["--input-type=module"] });
      w.on("error", (e) => { console.error(e); process.exitCode = 1; });
    `;
    expectThreaded(run(["--input-type=commonjs", "-"], {}, parent).report);
  });

  it("turn off with one warning under the permission model without --allow-worker; products still complete", () => {
    const major = Number(process.versions.node.split(".")[0]);
    const flag = major >= 22 ? "--permission" : "--experimental-permission";
    const { report, stderr } = run([flag, "--allow-fs-read=*", child]);
    expect(report.same).toBe(true);
    expect(report.exact).toBe(true);
    expect(report.info.threads).toBe(1);
    expect(report.info.threadError).toMatch(/^a kernel thread could not be started: /);
    expect(report.ready).toBe(0);
    expect(stderr.match(/LORAKIT_KERNEL_THREADS/g)).toHaveLength(1);
    expect(stderr).not.toMatch(/ERR_ACCESS_DENIED\n|at new Worker/);
  });
});

// Vitest global setup: unpacks the packaged Chromium (@sparticuz/chromium) once, before test files run in
// parallel, so two files never unpack into the same temp path at once. A copy that does not run (cut short by a
// killed run) is deleted and unpacked again. Failures are left to launchChromium, which falls back and names them.

import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { skipReason } from "./chromium.js";

function runs(file: string): boolean {
  return spawnSync(file, ["--version"], { stdio: "ignore", timeout: 30_000 }).status === 0;
}

export default async function setup(): Promise<void> {
  if (skipReason() !== null || process.env.LORAKIT_CHROMIUM) return;
  try {
    const { default: sparticuz } = await import("@sparticuz/chromium");
    const file = await sparticuz.executablePath();
    if (runs(file)) return;
    rmSync(file, { force: true });
    await sparticuz.executablePath();
  } catch {
    // launchChromium reports it, and tries the system Chromium
  }
}

// Where ../shared/fixtures/peft-golden is (sibling of the clone, or of a worktree's parent, or LORAKIT_SHARED),
// and small readers for its files. Tests that need it skip when it is absent.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ParsedSafetensors, parseSafetensors } from "../../src/io/safetensors.js";

const CANDIDATES = [
  ...(process.env.LORAKIT_SHARED ? [join(process.env.LORAKIT_SHARED, "fixtures/peft-golden")] : []),
  ...["../../../shared/fixtures/peft-golden", "../../../../shared/fixtures/peft-golden"].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  ),
];

/** Absolute path of the PEFT golden set, or null. */
export const GOLDEN: string | null = CANDIDATES.find((p) => existsSync(join(p, "input_ids.json"))) ?? null;

export function goldenFile(...parts: string[]): string {
  return join(GOLDEN!, ...parts);
}

export function readSafetensors(path: string): ParsedSafetensors {
  return parseSafetensors(readFileSync(path));
}

export function inputIds(): number[] {
  return (JSON.parse(readFileSync(goldenFile("input_ids.json"), "utf8")) as { input_ids: number[] }).input_ids;
}

/** Largest |a − e| / max|e| over the arrays (a relative error scaled by the logits' magnitude). */
export function relError(a: Float32Array, e: Float32Array): number {
  let maxE = 0;
  let maxD = 0;
  for (let i = 0; i < e.length; i++) {
    maxE = Math.max(maxE, Math.abs(e[i]!));
    maxD = Math.max(maxD, Math.abs(a[i]! - e[i]!));
  }
  return maxD / maxE;
}

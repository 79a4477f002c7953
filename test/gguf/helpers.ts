// Paths and small helpers for the GGUF suites: the repository's fixtures, ../shared/fixtures/peft-golden (override
// the shared folder with LORAKIT_SHARED), and a cross-check through @huggingface/gguf (an independent parser).

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gguf } from "@huggingface/gguf";
import { expect } from "vitest";
import type { ParsedGguf } from "../../src/io/gguf.js";
import { sharedFixtures } from "../helpers/shared.js";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const GGUF_FIXTURES = join(REPO_ROOT, "test", "fixtures", "gguf");
/**
 * shared/fixtures/peft-golden, found as test/helpers/shared.ts finds shared/ (LORAKIT_SHARED, beside the clone, or
 * beside its parent folder), or null when absent (tests that need it skip).
 */
export const GOLDEN: string | null = sharedFixtures("peft-golden", "report.json");

let tmp: string | null = null;
/** A file path in a fresh temporary folder (one folder per test process). */
export function tmpFile(name: string): string {
  tmp ??= mkdtempSync(join(tmpdir(), "lorakit-gguf-"));
  return join(tmp, name);
}

// @huggingface/gguf decodes strings with a default TextDecoder, which drops a leading U+FEFF (llama's vocabulary has
// that character as a token); compare with it removed on both sides.
function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  return typeof v === "string" ? v.replace(/^\uFEFF/, "") : v;
}

/**
 * Parses the same bytes with @huggingface/gguf and checks that every metadata value and tensor info agrees with
 * lorakit's parse.
 */
export async function crossCheck(bytes: Uint8Array, ours: ParsedGguf): Promise<void> {
  const path = tmpFile(`cross-${Math.random().toString(36).slice(2)}.gguf`);
  writeFileSync(path, bytes);
  const theirs = await gguf(path, { allowLocalFile: true });
  const md = theirs.metadata as Record<string, unknown>;
  expect(Number(md.version)).toBe(ours.version);
  expect(Number(md.tensor_count)).toBe(ours.tensors.length);
  expect(Number(md.kv_count)).toBe(ours.metadata.size);
  for (const [k, v] of ours.metadata) {
    const t = md[k];
    expect(plain(t), k).toEqual(plain(v.value));
  }
  expect(theirs.tensorInfos.length).toBe(ours.tensors.length);
  theirs.tensorInfos.forEach((ti, i) => {
    const t = ours.tensors[i]!;
    expect(ti.name).toBe(t.name);
    expect(ti.shape.map(Number)).toEqual(t.shape);
    expect(Number(ti.dtype)).toBe(t.type.id);
    expect(Number(ti.offset)).toBe(t.offset);
  });
  // with no tensors llama.cpp does not pad the end of the header (gguf.cpp seeks only when n_tensors > 0)
  if (ours.tensors.length > 0) expect(Number(theirs.tensorDataOffset)).toBe(ours.dataStart);
}

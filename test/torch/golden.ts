// Where the PEFT golden set is: $LORAKIT_SHARED/fixtures/peft-golden, or shared/ beside the clone (CI) or beside the
// parent folder of a git worktree. Tests that need it skip when it is not there.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CANDIDATES = [
  ...(process.env.LORAKIT_SHARED ? [join(process.env.LORAKIT_SHARED, "fixtures/peft-golden/")] : []),
  ...["../../../shared/fixtures/peft-golden/", "../../../../shared/fixtures/peft-golden/"].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  ),
];

/** Absolute path of fixtures/peft-golden/ (with a trailing slash), or null when it is not there. */
export const PEFT_GOLDEN: string | null = CANDIDATES.find((p) => existsSync(p)) ?? null;

/** The variants with an adapter-bin/ folder, and the torch.save format each was written in. */
export const BIN_VARIANTS: readonly (readonly [string, "zip" | "legacy"])[] = [
  ["peft-llama-basic", "zip"],
  ["peft-llama-bf16", "zip"],
  ["peft-llama-dora", "zip"],
  ["peft-gpt2-conv1d", "legacy"],
];

// Where the repository and the shared fixtures are. shared/ is found through LORAKIT_SHARED=/path/to/shared, or
// beside the clone (CI: <parent>/shared), or beside a git worktree's parent folder (<parent>/../shared). Tests that
// need a shared fixture folder skip when it is null.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (with a trailing slash). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

const SHARED_CANDIDATES = [
  ...(process.env.LORAKIT_SHARED ? [process.env.LORAKIT_SHARED] : []),
  join(REPO_ROOT, "..", "shared"),
  join(REPO_ROOT, "..", "..", "shared"),
];

/** Absolute path of shared/fixtures/<name> from the first candidate that has it, or null when none does. */
export function sharedFixtures(name: string, marker = ""): string | null {
  for (const shared of SHARED_CANDIDATES) {
    const dir = join(shared, "fixtures", name);
    if (existsSync(join(dir, marker))) return dir;
  }
  return null;
}

/** shared/fixtures/peft-golden: what Hugging Face PEFT 0.21 itself computed (see its README). */
export const PEFT_GOLDEN: string | null = sharedFixtures("peft-golden", "README.md");

/** shared/fixtures/real: third-party files (origins and licences in its SOURCES.md). */
export const REAL_FIXTURES: string | null = sharedFixtures("real");

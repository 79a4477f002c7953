// Where the shared real fixtures are: shared/ is a sibling of the clone (CI), or of the parent folder of a git
// worktree. Tests that need them skip when neither exists.

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const CANDIDATES = ["../../../shared/fixtures/real/", "../../../../shared/fixtures/real/"].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

/** Absolute path of shared/fixtures/real/ (with a trailing slash), or null when it is not there. */
export const REAL_FIXTURES: string | null = CANDIDATES.find((p) => existsSync(p)) ?? null;

/** The repository root (with a trailing slash). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

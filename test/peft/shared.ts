// The shared real fixtures (shared/fixtures/real) and the repository root, located by test/helpers/shared.ts. Tests
// that need the fixtures skip when REAL_FIXTURES is null.

export { REAL_FIXTURES, REPO_ROOT } from "../helpers/shared.js";

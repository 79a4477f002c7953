// Runs every bench/*.bench.mjs in turn with this Node's flags (npm run bench). Extra arguments are passed on.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
let failed = 0;
for (const f of readdirSync(here)
  .filter((f) => f.endsWith(".bench.mjs"))
  .sort()) {
  const r = spawnSync(process.execPath, [...process.execArgv, join(here, f), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;

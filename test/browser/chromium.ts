// Headless Chromium for the browser tests: Debian's /usr/bin/chromium (or LORAKIT_CHROMIUM) driven by
// playwright-core, never a browser that downloads itself. A missing Chromium fails the tests, except locally
// (CI unset) with LORAKIT_SKIP_BROWSER=1, where the suite is skipped with a message.

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

export const CHROMIUM = process.env.LORAKIT_CHROMIUM ?? "/usr/bin/chromium";

/** The flags Chromium needs on a machine with no network: no background traffic, no sandbox as root. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why the browser suite should be skipped, or null to run it (a missing Chromium then fails loudly). */
export function skipReason(): string | null {
  if (process.env.LORAKIT_SKIP_BROWSER === "1" && !process.env.CI) {
    return "browser tests skipped: LORAKIT_SKIP_BROWSER=1 (they always run in CI)";
  }
  return null;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launches Chromium with a fresh user-data-dir. Throws with install instructions when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}. Install Debian's package (apt-get install -y chromium; .ci/run does this), ` +
        "set LORAKIT_CHROMIUM to another binary, or set LORAKIT_SKIP_BROWSER=1 to skip the browser tests locally.",
    );
  }
  const userDataDir = mkdtempSync(path.join(tmpdir(), "lorakit-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

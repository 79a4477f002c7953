// Headless Chromium for the browser tests, driven by playwright-core; nothing downloads a browser. Tried in order:
// LORAKIT_CHROMIUM (when set, the only candidate), the Chromium shipped inside the @sparticuz/chromium dev
// dependency (unpacked from node_modules into the temp folder on first use, so `npm ci` is the only setup step),
// then a system Chromium (/usr/bin/chromium). The first that launches is used; when none does, the error lists why
// each failed. LORAKIT_SKIP_BROWSER=1 skips the suite locally (never in CI).

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

/** A system Chromium, the fallback when the packaged one cannot be unpacked or launched. */
export const SYSTEM_CHROMIUM = "/usr/bin/chromium";

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
  /** Which candidate was launched: "LORAKIT_CHROMIUM", "@sparticuz/chromium" (with or without its flags), "system". */
  source: string;
  executablePath: string;
  close(): Promise<void>;
}

/** One Chromium to try: where it comes from, and how to get its binary and the extra flags it needs. */
export interface ChromiumCandidate {
  source: string;
  resolve(): Promise<{ executablePath: string; args: string[] }>;
}

/**
 * The packaged Chromium. It runs with the common flags on a container host; its own flag list (sparticuz.args)
 * targets serverless hosts, where it needs one process and no zygote, so a second try adds those two. None of its
 * security relaxations are used (--disable-web-security would change what the cross-origin isolation tests see).
 */
const SERVERLESS_ARGS = ["--single-process", "--no-zygote"];

async function packagedChromium(extra: string[]): Promise<{ executablePath: string; args: string[] }> {
  const { default: sparticuz } = await import("@sparticuz/chromium");
  return { executablePath: await sparticuz.executablePath(), args: extra };
}

async function fixedPath(file: string): Promise<{ executablePath: string; args: string[] }> {
  if (!existsSync(file)) throw new Error(`${file} does not exist`);
  return { executablePath: file, args: [] };
}

/** The candidates, in the order they are tried (see the module header). */
export function chromiumCandidates(env: NodeJS.ProcessEnv = process.env): ChromiumCandidate[] {
  const own = env.LORAKIT_CHROMIUM;
  if (own) return [{ source: "LORAKIT_CHROMIUM", resolve: () => fixedPath(own) }];
  return [
    { source: "@sparticuz/chromium", resolve: () => packagedChromium([]) },
    { source: "@sparticuz/chromium (serverless flags)", resolve: () => packagedChromium(SERVERLESS_ARGS) },
    { source: "system", resolve: () => fixedPath(SYSTEM_CHROMIUM) },
  ];
}

async function launchOne(candidate: ChromiumCandidate): Promise<Browser> {
  const { executablePath, args } = await candidate.resolve();
  const userDataDir = mkdtempSync(path.join(tmpdir(), "lorakit-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_ARGS, ...args],
      viewport: { width: 1280, height: 900 },
    });
    return {
      context,
      source: candidate.source,
      executablePath,
      close: async () => {
        await context.close();
        rmSync(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
}

/** Launches the first candidate that starts, with a fresh user-data-dir. Throws, naming each failure, if none does. */
export async function launchChromium(candidates = chromiumCandidates()): Promise<Browser> {
  const failures: string[] = [];
  for (const c of candidates) {
    try {
      return await launchOne(c);
    } catch (e) {
      failures.push(`${c.source}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new Error(
    `no Chromium could be launched (${failures.join("; ")}). The packaged one comes with \`npm ci\` ` +
      `(@sparticuz/chromium, unpacked to ${path.join(tmpdir(), "chromium")}: delete that file if a copy was cut ` +
      "short); otherwise install a system Chromium, set LORAKIT_CHROMIUM to a binary, or set LORAKIT_SKIP_BROWSER=1 " +
      "to skip the browser tests locally.",
  );
}

// Builds what the browser tests serve, fresh, into a temporary folder: the browser bundle
// (scripts/bundle-browser.mjs) and the static playground built against that bundle (playground/vite.config.ts).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { build } from "vite";
import { playgroundConfig } from "../../playground/vite.config.js";
import { bundleBrowser } from "../../scripts/bundle-browser.mjs";

export interface BuiltSite {
  /** Folder holding lorakit.js, the browser bundle, and blank.html, an empty page to load it into. */
  bundleDir: string;
  /** Folder holding the static playground (index.html and assets/). */
  playgroundDir: string;
  cleanup(): void;
}

export async function buildSite(): Promise<BuiltSite> {
  const dir = mkdtempSync(path.join(tmpdir(), "lorakit-site-"));
  const bundleDir = path.join(dir, "browser");
  const playgroundDir = path.join(dir, "playground");
  const bundle = path.join(bundleDir, "lorakit.js");
  await bundleBrowser({ outfile: bundle });
  writeFileSync(path.join(bundleDir, "blank.html"), "<!doctype html><title>blank</title>\n");
  await build({ ...playgroundConfig("build", { bundle, outDir: playgroundDir }), configFile: false, logLevel: "warn" });
  return { bundleDir, playgroundDir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

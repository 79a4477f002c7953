// Types of scripts/bundle-browser.mjs for the tests that import it.
import type { BuildOptions, Metafile } from "esbuild";

export declare const BROWSER_BUNDLE: string;
export declare const BROWSER_BUNDLE_OPTIONS: BuildOptions;
export declare function bundleBrowser(options?: {
  outfile?: string;
  write?: boolean;
}): Promise<{ code: string | null; metafile: Metafile }>;

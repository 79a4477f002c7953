// Builds the browser bundle: the package's "." entry (src/index.ts) as one minified ESM file,
// dist/browser/lorakit.js, with no Node built-ins (platform "browser" fails the build on a `node:` import).
// Run by `npm run build`; test/bundle/ and test/browser/ call bundleBrowser() to build a fresh copy.

import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Where `npm run build` writes the bundle, relative to the repository root. */
export const BROWSER_BUNDLE = "dist/browser/lorakit.js";

/** esbuild options shared by the build and the tests. */
export const BROWSER_BUNDLE_OPTIONS = {
  absWorkingDir: ROOT,
  entryPoints: ["src/index.ts"],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  legalComments: "none",
  // Readable names in stack traces. Error names do not depend on it: each error class sets a fixed `name`.
  keepNames: true,
  // WebAssembly modules imported as files are inlined as bytes, so the bundle stays one file.
  loader: { ".wasm": "binary" },
  logLevel: "warning",
};

/**
 * Builds the bundle. With `outfile` it is written there (and returned); with `write: false` it is only
 * returned. Returns { code, metafile }.
 */
export async function bundleBrowser({ outfile = BROWSER_BUNDLE, write = true } = {}) {
  const result = await build({ ...BROWSER_BUNDLE_OPTIONS, outfile, write, metafile: true });
  const code = write
    ? null
    : new TextDecoder().decode(result.outputFiles.find((f) => f.path.endsWith(".js"))?.contents ?? new Uint8Array());
  return { code, metafile: result.metafile };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { metafile } = await bundleBrowser();
  const bytes = Object.values(metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
  process.stdout.write(`${BROWSER_BUNDLE}: ${bytes} bytes\n`);
}

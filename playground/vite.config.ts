// Vite config of the playground. `lorakit` resolves to the library's source entry under `vite` (dev server,
// live reload) and to the shipped browser bundle dist/browser/lorakit.js under `vite build`, so the static
// playground runs the exact file users get. LORAKIT_ISOLATED=1 adds the COOP/COEP headers that make the
// page cross-origin isolated (SharedArrayBuffer, threads) on the dev and preview servers.

import { fileURLToPath } from "node:url";
import { defineConfig, type UserConfig } from "vite";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Headers that make a page cross-origin isolated. */
export const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export interface PlaygroundOptions {
  /** Browser bundle used by a build; default dist/browser/lorakit.js. */
  bundle?: string;
  /** Output folder of a build; default dist/playground. */
  outDir?: string;
}

/** The playground's Vite config for `command` ("serve" or "build"). */
export function playgroundConfig(command: "serve" | "build", options: PlaygroundOptions = {}): UserConfig {
  const lorakit =
    command === "build" ? (options.bundle ?? here("../dist/browser/lorakit.js")) : here("../src/index.ts");
  const headers = process.env.LORAKIT_ISOLATED === "1" ? ISOLATION_HEADERS : {};
  return {
    root: here("."),
    base: "./",
    resolve: { alias: [{ find: /^lorakit$/, replacement: lorakit }] },
    build: { outDir: options.outDir ?? here("../dist/playground"), emptyOutDir: true, target: "es2022" },
    server: { host: "127.0.0.1", headers },
    preview: { host: "127.0.0.1", headers },
  };
}

export default defineConfig(({ command }) => playgroundConfig(command));

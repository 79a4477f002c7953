import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "cli/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    pool: "forks",
    // unpacks the packaged Chromium of the browser tests once, before files run in parallel
    globalSetup: ["test/browser/global-setup.ts"],
  },
});

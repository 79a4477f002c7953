// Which Chromium the browser tests get: the one packaged in node_modules (@sparticuz/chromium) needs no system
// install, and a candidate that fails falls through to the next, with every failure named when none launches.

import { describe, expect, it } from "vitest";
import { type ChromiumCandidate, chromiumCandidates, launchChromium, skipReason } from "./chromium.js";

const failing = (source: string, why: string): ChromiumCandidate => ({
  source,
  resolve: () => Promise.reject(new Error(why)),
});

describe("Chromium for the browser tests", () => {
  it("tries LORAKIT_CHROMIUM alone when set, else the packaged Chromium and then the system one", () => {
    expect(chromiumCandidates({ LORAKIT_CHROMIUM: "/opt/c" }).map((c) => c.source)).toEqual(["LORAKIT_CHROMIUM"]);
    expect(chromiumCandidates({}).map((c) => c.source)).toEqual([
      "@sparticuz/chromium",
      "@sparticuz/chromium (serverless flags)",
      "system",
    ]);
  });

  it("names every candidate's failure when none launches", async () => {
    const missing = chromiumCandidates({ LORAKIT_CHROMIUM: "/nonexistent/chromium" });
    await expect(launchChromium([failing("first", "cannot unpack"), ...missing])).rejects.toThrow(
      /no Chromium could be launched \(first: cannot unpack; LORAKIT_CHROMIUM: \/nonexistent\/chromium does not exist\)/,
    );
  });

  it.skipIf(skipReason() !== null)(
    "launches the packaged Chromium after a failed candidate, with nothing installed on the system",
    async () => {
      const packaged = chromiumCandidates({}).filter((c) => c.source.startsWith("@sparticuz/chromium"));
      const browser = await launchChromium([failing("broken", "no such binary"), ...packaged]);
      try {
        expect(browser.source).toBe("@sparticuz/chromium");
        const page = await browser.context.newPage();
        expect(await page.evaluate(() => [navigator.userAgent.includes("Chrome"), 6 * 7])).toEqual([true, 42]);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});

// The browser suite, in one headless Chromium (see chromium.ts; driven by playwright-core) launched once:
// - end-to-end on the built playground: types the first mission example, checks the output, the explanation
//   and the library's error messages, keeps screenshots under artifacts/, and checks the status line with and
//   without cross-origin isolation (COOP/COEP headers);
// - kernel threads: on an isolated page the bundle's matmul runs on Web Workers and matches one thread bit for
//   bit; on a plain page it stays single-threaded and creates no worker;
// - parity: the browser bundle computes random float64 cases exactly as the library does in Node.

import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { explainLoraForward, LoraError, loraForward, renderExplanation } from "../../src/index.js";
import { SEED } from "../helpers/seed.js";
import { type BuiltSite, buildSite } from "./build.js";
import { CASES, inNode } from "./cases.js";
import { type Browser, launchChromium, skipReason } from "./chromium.js";
import { type StaticServer, serveStatic } from "./serve.js";

const ARTIFACTS = fileURLToPath(new URL("../../artifacts/", import.meta.url));
const FIRST = {
  x: [[1, 2]],
  W: [
    [1, 0],
    [0, 1],
  ],
  B: [[1], [1]],
  A: [[0.5, 0.5]],
  alpha: 2,
};

/** The LoraError the library throws for these arguments (the page calls explainLoraForward), in Node. */
function libraryError(...args: Parameters<typeof explainLoraForward>): LoraError {
  try {
    explainLoraForward(...args);
  } catch (e) {
    if (e instanceof LoraError) return e;
    throw e;
  }
  throw new Error("expected a LoraError");
}

const skip = skipReason();
if (skip) console.warn(skip);

describe.skipIf(skip !== null)("in headless Chromium", () => {
  let site: BuiltSite;
  let plain: StaticServer;
  let isolated: StaticServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  let setup: Promise<void>;

  // A failed setup (no Chromium, say) fails every test through beforeEach, so it counts as failures, not skips.
  beforeAll(async () => {
    setup = start();
    await setup.catch(() => undefined);
  }, 60_000);
  beforeEach(() => setup);

  async function start(): Promise<void> {
    site = await buildSite();
    const mounts = { "/": site.playgroundDir, "/bundle/": site.bundleDir };
    plain = await serveStatic(mounts);
    isolated = await serveStatic(mounts, { isolated: true });
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(m.text());
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  }

  afterAll(async () => {
    await browser?.close();
    await plain?.close();
    await isolated?.close();
    site?.cleanup();
  });

  async function open(base: string): Promise<void> {
    await page.goto(`${base}/`);
    await page.waitForSelector("body[data-ready=true]");
  }

  const text = async (selector: string) => (await page.textContent(selector))?.trim() ?? "";

  it("computes the first mission example typed into the inputs: [[4, 5]] and its explanation", async () => {
    await open(plain.url);
    await page.click('button[data-example="scalar"]'); // start from another example so typing must change it
    expect(await page.getAttribute("#output", "data-json")).toBe("[[14]]");

    await page.fill("#input-x", "1 2");
    await page.fill("#input-W", "1 0\n0 1");
    await page.fill("#input-B", "1\n1");
    await page.fill("#input-A", "0.5, 0.5");
    await page.fill("#input-alpha", "2");

    expect(await page.getAttribute("#output", "data-json")).toBe("[[4,5]]");
    expect(await page.$$('#examples [aria-pressed="true"]')).toHaveLength(0); // edited: no example selected
    expect(await text("#output")).toBe("4.05.0"); // two cells, "4.0" and "5.0"
    expect(await text("#shape-h")).toBe("[1, 2]");
    expect(await page.isHidden("#error")).toBe(true);

    const expected = renderExplanation(explainLoraForward(FIRST.x, FIRST.W, FIRST.B, FIRST.A, FIRST.alpha));
    expect(await page.textContent("#explanation-text")).toBe(expected);
    expect(expected).toContain("x @ W = [[1.0, 2.0]] @ [[1.0, 0.0], [0.0, 1.0]] = [[1.0, 2.0]]");

    const steps = await page.$$eval("#steps > li", (lis) => lis.map((li) => li.textContent ?? ""));
    expect(steps).toHaveLength(5);
    expect(steps[0]).toContain("1. Frozen path");
    expect(steps[1]).toContain("2. Low-rank path");
    expect(steps[2]).toContain("r = 1 (columns of B [2, 1] = rows of A [1, 2])");
    expect(steps[3]).toContain("s = alpha / r = 2.0 / 1 = 2.0");
    expect(steps[4]).toContain("5. Combine");

    const maps = await page.$$eval("#heatmaps svg", (svgs) => svgs.map((s) => s.getAttribute("aria-label")));
    expect(maps).toEqual(["W, 2 by 2", "B · A, 2 by 2", "W + s · B · A, 2 by 2", "h, 1 by 2"]);
    // W + s·B·A = I + 2·[[0.5, 0.5], [0.5, 0.5]] = [[2, 1], [1, 2]]; its cells print their values
    const merged = await page.$$eval("#heatmaps figure:nth-child(3) svg text", (ts) => ts.map((t) => t.textContent));
    expect(merged).toEqual(["2.0", "1.0", "1.0", "2.0"]);

    await page.screenshot({ path: path.join(ARTIFACTS, "playground.png"), fullPage: true });
  });

  it("shows the library's error for a bad shape, marks the input, and recovers", async () => {
    await page.fill("#input-A", "0.5 0.5 0.5");
    const err = libraryError(FIRST.x, FIRST.W, FIRST.B, [[0.5, 0.5, 0.5]], FIRST.alpha);
    expect(err.message).toBe("explainLoraForward: A has shape [1, 3], expected [1, 2] because W is [2, 2] (dOut = 2)");
    expect(await page.isVisible("#error")).toBe(true);
    expect(await text("#error .err-class")).toBe("ShapeError");
    expect(await text("#error .err-code")).toBe("shape_mismatch");
    expect(await text("#error .err-message")).toBe(err.message);
    expect(await page.getAttribute('.field[data-field="A"]', "class")).toContain("invalid");
    await page.screenshot({ path: path.join(ARTIFACTS, "playground-error.png") });

    await page.fill("#input-x", "1 abc");
    const nan = libraryError([[1, "abc"]], FIRST.W, FIRST.B, FIRST.A, FIRST.alpha);
    expect(await text("#error .err-message")).toBe(nan.message);
    expect(await text("#error .err-code")).toBe(nan.code);

    await page.fill("#input-x", "1 2");
    await page.fill("#input-A", "0.5 0.5");
    expect(await page.isHidden("#error")).toBe(true);
    expect(await page.getAttribute("#output", "data-json")).toBe("[[4,5]]");
  });

  it("switches to rsLoRA scaling, alpha / sqrt(r)", async () => {
    await page.click('button[data-example="rank2"]');
    await page.check("#input-rslora");
    const ex = {
      x: [
        [1, 0],
        [0, 1],
      ],
      W: [
        [2, 1],
        [1, 2],
      ],
      B: [
        [0.5, 0.5],
        [0.5, 0.5],
      ],
      A: [
        [1, 0],
        [0, 1],
      ],
    };
    const h = loraForward(ex.x, ex.W, ex.B, ex.A, 1, { scaling: "rslora" });
    expect(await page.getAttribute("#output", "data-json")).toBe(JSON.stringify(h));
    expect(await text("#steps > li:nth-child(4)")).toContain("s = alpha / sqrt(r) = 1.0 / sqrt(2) = 0.7071");
    await page.uncheck("#input-rslora");
    expect(await page.getAttribute("#output", "data-json")).toBe("[[2.25,1.25],[1.25,2.25]]");
  });

  it("counts trainable parameters: LoRA r·(dIn + dOut) vs full dIn·dOut", async () => {
    await page.fill("#calc-din", "4096");
    await page.fill("#calc-dout", "4096");
    await page.fill("#calc-r", "8");
    expect(await text("#calc-lora")).toBe("65,536 (0.39%)");
    expect(await text("#calc-full")).toBe("16,777,216");
    expect(await text("#calc-summary")).toContain("256× fewer");
    await page.fill("#calc-r", "0");
    expect(await text("#calc-error")).toBe('r must be a positive integer, got "0"');
    await page.click("#calc-use-current"); // the rank-2 example above: dIn = dOut = 2, r = 2
    expect(await text("#calc-lora")).toBe("8 (200%)");
    expect(await page.isHidden("#calc-error")).toBe(true);
  });

  it("reports crossOriginIsolated false without COOP/COEP and true with them", async () => {
    await open(plain.url);
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(false);
    expect(await page.getAttribute("#status", "data-isolated")).toBe("false");
    await page.waitForSelector("#status[data-threads]");
    expect(await text("#status")).toMatch(/^crossOriginIsolated: false · kernels: wasm-(relaxed-)?simd, 1 thread$/);

    await open(isolated.url);
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    expect(await page.getAttribute("#status", "data-isolated")).toBe("true");
    await page.waitForSelector("#status[data-threads]");
    const cores = Math.min(32, await page.evaluate(() => navigator.hardwareConcurrency));
    const threads = `${cores} thread${cores === 1 ? "" : "s"}`;
    expect(await text("#status")).toMatch(
      new RegExp(`^crossOriginIsolated: true · kernels: wasm-(relaxed-)?simd, ${threads}$`),
    );
    expect(await page.getAttribute("#output", "data-json")).toBe("[[4,5]]");
  });

  /** Opens an empty page of `base` that counts the Workers it creates, with the bundle as globalThis.lorakit. */
  async function bundlePage(base: string): Promise<Page> {
    const p = await browser.context.newPage();
    p.on("pageerror", (e) => pageErrors.push(e.message));
    await p.addInitScript(() => {
      const g = globalThis as unknown as { Worker: typeof Worker; workersCreated: number };
      const Original = g.Worker;
      g.workersCreated = 0;
      g.Worker = class extends Original {
        constructor(...args: ConstructorParameters<typeof Worker>) {
          super(...args);
          g.workersCreated++;
        }
      };
    });
    await p.goto(`${base}/bundle/blank.html`); // not the playground, which starts its own kernel threads
    await p.addScriptTag({
      type: "module",
      content: `import * as lorakit from "${base}/bundle/lorakit.js"; globalThis.lorakit = lorakit;`,
    });
    await p.waitForFunction(() => "lorakit" in globalThis);
    return p;
  }

  /** In the page: initKernels with 3 threads, then a 192×256×256 float32 product (2²³·1.5 multiply-adds). */
  const threadedProduct = (p: Page) =>
    p.evaluate(async () => {
      const g = globalThis as unknown as { lorakit: typeof import("../../src/index.js"); workersCreated: number };
      const lk = g.lorakit;
      lk.configureKernels({ threads: 3 });
      const info = await lk.initKernels();
      const [m, k, n] = [192, 256, 256];
      let seed = 12345;
      const next = () => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return (seed >>> 8) / (1 << 24) - 0.5;
      };
      const a = { data: Float32Array.from({ length: m * k }, next), rows: m, cols: k };
      const b = { data: Float32Array.from({ length: k * n }, next), rows: k, cols: n };
      const one = lk.matmul(a, b, { threads: 1 }).data as Float32Array;
      const many = lk.matmul(a, b, { threads: 3 }).data as Float32Array;
      const bits = (x: Float32Array) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
      const [u, v] = [bits(one), bits(many)];
      return {
        info,
        after: lk.kernelInfo(),
        identical: u.length === m * n && u.every((x, i) => x === v[i]),
        nonzero: one.some((x) => x !== 0),
        workers: g.workersCreated,
      };
    });

  it("cross-origin isolated: matmul runs on Web Workers, bit-identical to one thread", async () => {
    const p = await bundlePage(isolated.url);
    const r = await threadedProduct(p);
    await p.close();
    expect(r.info.backend).toMatch(/^wasm-/);
    expect(r.info.threads).toBe(3);
    expect(r.info.maxThreads).toBe(3);
    expect(r.after.threads).toBe(3); // the pool survived the threaded call
    expect(r.workers).toBe(2); // the caller is the third thread
    expect(r.nonzero).toBe(true);
    expect(r.identical).toBe(true);
  });

  it("not isolated: one thread and no Worker created", async () => {
    const p = await bundlePage(plain.url);
    const r = await threadedProduct(p);
    await p.close();
    expect(r.info.backend).toMatch(/^wasm-/);
    expect(r.info).toMatchObject({ threads: 1, maxThreads: 1 });
    expect(r.workers).toBe(0);
    expect(r.identical).toBe(true);
  });

  it(`parity: ${CASES.length} random float64 cases (seed ${SEED}) give the same numbers as in Node`, async () => {
    await open(plain.url);
    // A module script loads the bundle as a page would (and out of reach of vitest's import() rewriting).
    await page.addScriptTag({
      type: "module",
      content: `import * as lorakit from "${plain.url}/bundle/lorakit.js"; globalThis.lorakit = lorakit;`,
    });
    await page.waitForFunction(() => "lorakit" in globalThis);
    const inPage = await page.evaluate((cases) => {
      const lk = (globalThis as unknown as { lorakit: typeof import("../../src/index.js") }).lorakit;
      const view = (m: number[][], cols: number) => ({ data: Float64Array.from(m.flat()), rows: m.length, cols });
      return cases.map((c) => {
        const dIn = c.W.length;
        const dOut = c.W[0]!.length;
        const r = c.A.length;
        const typed = lk.loraForward(view(c.x, dIn), view(c.W, dOut), view(c.B, r), view(c.A, dOut), c.alpha);
        return {
          nested: lk.loraForward(c.x, c.W, c.B, c.A, c.alpha),
          typed: Array.from(typed.data),
          rslora: lk.loraForward(c.x, c.W, c.B, c.A, c.alpha, { scaling: "rslora" }),
          explanation: lk.explainLoraForward(c.x, c.W, c.B, c.A, c.alpha),
        };
      });
    }, CASES);
    expect(inPage).toHaveLength(CASES.length);
    CASES.forEach((c, i) => {
      // toStrictEqual compares numbers with Object.is: exact, and +0 and -0 differ
      expect(inPage[i], `case ${i}: ${JSON.stringify(c)}`).toStrictEqual(inNode(c));
    });
    // the sample is not degenerate: it has empty batches, rank > 1 and non-integer values
    expect(CASES.some((c) => c.x.length === 0)).toBe(true);
    expect(CASES.some((c) => c.A.length > 1)).toBe(true);
    expect(CASES.some((c) => !Number.isInteger(c.W[0]![0]!))).toBe(true);
  });

  it("raised no page errors", () => {
    expect(pageErrors).toEqual([]);
  });
});

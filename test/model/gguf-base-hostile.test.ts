// A GGUF base with any metadata entry changed to an odd value, retyped or removed either loads and gives finite
// logits, or throws a LoraError naming what is wrong: never another error (a TypeError, a RangeError from a huge
// allocation) and never NaN logits from a value no model has (a negative epsilon, a rotary base of 0).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LoraError } from "../../src/errors.js";
import { type ParsedGguf, parseGguf } from "../../src/io/gguf.js";
import type { GgufValue } from "../../src/io/gguf-types.js";
import { loadGgufModel } from "../../src/model/gguf-base.js";
import { convertModelToGguf } from "../../src/node/gguf-file.js";
import { GOLDEN, goldenFile } from "./golden.js";

const tmp = mkdtempSync(join(tmpdir(), "lorakit-gguf-hostile-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NUMBERS = [0, 1, -1, 3, 2 ** 31 - 1, 2 ** 32 - 1, 1e9, 0.5, Number.NaN, Number.POSITIVE_INFINITY];

// the odd values tried in place of v (undefined: the entry removed)
function oddValues(v: GgufValue): (GgufValue | undefined)[] {
  const out: (GgufValue | undefined)[] = [undefined];
  if (v.type === "string")
    out.push({ type: "string", value: "" }, { type: "string", value: "gpt2" }, { type: "u32", value: 3 });
  else if (v.type === "array")
    out.push({ ...v, value: [] }, { ...v, value: v.value.slice(0, 1) }, { type: "u32", value: 1 });
  else if (v.type === "u64" || v.type === "i64") out.push({ ...v, value: 0n }, { ...v, value: 2n ** 62n });
  else if (v.type === "bool") out.push({ type: "u32", value: 7 });
  else for (const x of NUMBERS) out.push({ type: v.type, value: x });
  return out;
}

describe.skipIf(!GOLDEN)("hostile GGUF base metadata (peft-golden bases)", () => {
  for (const kind of ["llama", "gpt2"]) {
    it(`${kind}: every metadata entry changed or removed loads with finite logits or throws a LoraError`, async () => {
      const file = join(tmp, `${kind}.gguf`);
      await convertModelToGguf(goldenFile("base", kind), file, { dtype: "Q8_0" });
      const g = parseGguf(readFileSync(file));
      let refused = 0;
      let loaded = 0;
      for (const [key, v] of g.metadata) {
        for (const odd of oddValues(v)) {
          const metadata = new Map(g.metadata);
          if (odd === undefined) metadata.delete(key);
          else metadata.set(key, odd);
          const what = `${key} = ${odd === undefined ? "(removed)" : `${odd.type} ${String(odd.value).slice(0, 40)}`}`;
          const h: ParsedGguf = { ...g, metadata };
          let logits: Float32Array | undefined;
          try {
            const model = await loadGgufModel(h);
            logits = model.forward([{ ids: [1, 2, 3], cache: model.createCache(8) }])[0];
          } catch (e) {
            if (!(e instanceof LoraError)) throw new Error(`${what}: ${String(e)}`);
            expect(e.message.length, what).toBeGreaterThan(0);
            refused++;
            continue;
          }
          expect(logits!.every(Number.isFinite), what).toBe(true);
          loaded++;
        }
      }
      // both outcomes happened: the mutations reached the checks, and harmless ones (a name, a score) still load
      expect(refused).toBeGreaterThan(20);
      expect(loaded).toBeGreaterThan(10);
    }, 120_000);
  }
});

// Fuzzing the reader: random bytes, random JSON headers and mutated valid files must either parse or throw a
// SafetensorsError — never another exception, never a hang — and a parse that succeeds never describes more
// tensor bytes than the input holds (so nothing decoded later can be larger than the input justifies).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DTYPE_BITS,
  type ParsedSafetensors,
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
  type TensorToWrite,
} from "../../src/index.js";
import { rawSafetensors } from "../helpers/safetensors.js";
import { SEED } from "../helpers/seed.js";

const DTYPES = Object.keys(DTYPE_BITS);

/** Parses; on success checks the invariants and touches every tensor. Returns the error code or "ok". */
function parseOrCode(bytes: Uint8Array): string {
  let p: ParsedSafetensors;
  try {
    p = parseSafetensors(bytes);
  } catch (err) {
    if (err instanceof SafetensorsError) return err.code;
    throw err;
  }
  let total = 0;
  for (const name of p.names()) {
    const info = p.info(name);
    const [begin, end] = info.dataOffsets;
    total += end - begin;
    expect(p.bytes(name).length).toBe(end - begin);
    try {
      const values = p.toFloat32(name);
      expect(values.length * DTYPE_BITS[info.dtype]).toBe(8 * (end - begin));
    } catch (err) {
      if (!(err instanceof SafetensorsError) || err.code !== "unsupported_dtype") throw err;
    }
  }
  expect(p.header.dataStart + total).toBe(bytes.length);
  return "ok";
}

const dim = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 6 }) },
  fc.constantFrom(-1, -0, 1.5, 2 ** 53, 2 ** 53 + 2, 1e308, 2 ** 31, 2 ** 32),
);
const entry = fc.record(
  {
    dtype: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...DTYPES) }, fc.string({ maxLength: 6 }), fc.anything()),
    shape: fc.oneof({ weight: 5, arbitrary: fc.array(dim, { maxLength: 3 }) }, fc.anything()),
    data_offsets: fc.oneof(
      { weight: 5, arbitrary: fc.tuple(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 64 })) },
      fc.array(dim, { maxLength: 3 }),
      fc.anything(),
    ),
    extra: fc.anything(),
  },
  { requiredKeys: [] },
);
const headerObject = fc.dictionary(
  fc.oneof(fc.string({ maxLength: 5 }), fc.constantFrom("__metadata__", "__proto__", "constructor")),
  fc.oneof({ weight: 5, arbitrary: entry }, fc.anything(), fc.dictionary(fc.string(), fc.string())),
  { maxKeys: 5 },
);

describe("reader fuzz (fixed seed, bounded runs)", () => {
  it("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 160 }), (bytes) => {
        parseOrCode(bytes);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it("random bytes after a plausible length prefix", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 160 }), fc.nat(200), (body, n) => {
        parseOrCode(
          rawSafetensors(body.subarray(0, Math.min(n, body.length)), body.subarray(Math.min(n, body.length))),
        );
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it("random JSON headers with valid-looking and broken entries", () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(headerObject, fc.integer({ min: 0, max: 70 }), fc.constantFrom("", " ", "\n\t"), (h, data, ws) => {
        seen.add(parseOrCode(rawSafetensors(ws + JSON.stringify(h) + ws, data)));
      }),
      { seed: SEED, numRuns: 3000 },
    );
    // The generator reaches deep into the rules, not just the JSON check.
    for (const code of ["ok", "invalid_header_deserialization", "invalid_offset", "tensor_invalid_info"]) {
      expect(seen).toContain(code);
    }
  });

  const validFile = fc
    .array(
      fc.tuple(
        fc.string({ maxLength: 4 }),
        fc.constantFrom("F32", "F16", "BF16", "F64", "U8", "I64", "F8_E5M2"),
        fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
      ),
      { maxLength: 4 },
    )
    .map((list) => {
      const tensors: Record<string, TensorToWrite> = {};
      for (const [name, dtype, shape] of list) {
        if (name === "__metadata__") continue;
        const n = shape.reduce((a, b) => a * b, 1);
        tensors[name] = {
          dtype: dtype as TensorToWrite["dtype"],
          shape,
          data: new Uint8Array((n * DTYPE_BITS[dtype as TensorToWrite["dtype"]]) / 8).map((_, i) => i * 37),
        };
      }
      return serializeSafetensors(tensors, { k: "v" });
    });

  it("mutated valid files: flipped bytes, rewritten length, truncation and extension", () => {
    fc.assert(
      fc.property(
        validFile,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.oneof(
          fc.constant(undefined),
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.bigInt({ min: 0n, max: 300n }),
        ),
        fc.integer({ min: -8, max: 8 }),
        (file, flips, length, resize) => {
          expect(parseOrCode(file)).toBe("ok");
          let bytes = file.slice();
          for (const [at, v] of flips) if (bytes.length > 0) bytes[at % bytes.length] = v;
          if (length !== undefined) new DataView(bytes.buffer).setBigUint64(0, length, true);
          if (resize < 0) bytes = bytes.subarray(0, Math.max(0, bytes.length + resize));
          else if (resize > 0) bytes = Uint8Array.from([...bytes, ...new Uint8Array(resize)]);
          parseOrCode(bytes);
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it("mutated header text: a character replaced, inserted or deleted", () => {
    fc.assert(
      fc.property(
        validFile,
        fc.nat(),
        fc.constantFrom("replace", "insert", "delete"),
        fc.string({ minLength: 1, maxLength: 2 }),
        (file, at, how, s) => {
          const n = Number(new DataView(file.buffer).getBigUint64(0, true));
          const text = new TextDecoder().decode(file.subarray(8, 8 + n));
          const i = at % (text.length + 1);
          const mutated =
            how === "insert"
              ? text.slice(0, i) + s + text.slice(i)
              : text.slice(0, i) + (how === "replace" ? s : "") + text.slice(i + 1);
          parseOrCode(rawSafetensors(mutated, file.subarray(8 + n)));
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });

  // Text JSON.parse refuses is refused (a field error found earlier may be named instead of the syntax error), and
  // text it accepts is never called invalid JSON.
  it("differential: the header reader agrees with JSON.parse on what is JSON", () => {
    const edit = fc.tuple(fc.nat(), fc.constantFrom(...'{}[],:"\\ 0-.eE1tfnu\t'.split("")), fc.boolean());
    let refused = 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.array(edit, { maxLength: 3 }), (value, edits) => {
        let text = `{"w": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0], "x": ${JSON.stringify(value)}}}`;
        for (const [at, ch, isInsert] of edits) {
          const i = at % (text.length + 1);
          text = text.slice(0, i) + ch + text.slice(isInsert ? i : i + 1);
        }
        let isJson = true;
        try {
          JSON.parse(text);
        } catch {
          isJson = false;
        }
        let message = "ok";
        let code = "ok";
        try {
          parseSafetensors(rawSafetensors(text));
        } catch (err) {
          if (!(err instanceof SafetensorsError)) throw err;
          ({ message, code } = err);
        }
        if (isJson) expect(message, text).not.toContain("header is not valid JSON");
        else {
          refused++;
          expect(code, text).toBe("invalid_header_deserialization");
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
    expect(refused).toBeGreaterThan(300);
  });
});

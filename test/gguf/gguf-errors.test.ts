// Every GGUF error code the reader and writer raise, on a hand-built file, plus a seeded fuzz: random byte
// mutations and truncations of a valid file either parse or throw a GgufError, never anything else.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GgufError, LoraError } from "../../src/errors.js";
import { parseGguf, serializeGguf } from "../../src/io/gguf.js";
import { adapterToGguf, ggufToAdapter } from "../../src/io/gguf-lora.js";
import type { GgufValue } from "../../src/io/gguf-types.js";

// A raw GGUF writer for malformed files: parts are [kind, value] pairs.
type Part = ["u32", number] | ["u64", bigint | number] | ["i64", bigint | number] | ["str", string] | ["raw", number[]];
function raw(parts: Part[], pad = 0): Uint8Array {
  const out: number[] = [];
  const put = (n: number, f: (d: DataView) => void): void => {
    const b = new Uint8Array(n);
    f(new DataView(b.buffer));
    out.push(...b);
  };
  for (const [k, v] of parts) {
    if (k === "u32") put(4, (d) => d.setUint32(0, v, true));
    else if (k === "u64") put(8, (d) => d.setBigUint64(0, BigInt(v), true));
    else if (k === "i64") put(8, (d) => d.setBigInt64(0, BigInt(v), true));
    else if (k === "raw") out.push(...v);
    else {
      const s = new TextEncoder().encode(v);
      put(8, (d) => d.setBigUint64(0, BigInt(s.length), true));
      out.push(...s);
    }
  }
  for (let i = 0; i < pad; i++) out.push(0);
  return new Uint8Array(out);
}
const MAGIC: Part = ["raw", [0x47, 0x47, 0x55, 0x46]];
const head = (nT: number, nKv: number, version = 3): Part[] => [MAGIC, ["u32", version], ["u64", nT], ["u64", nKv]];
// one F32 tensor info: name, 1 dim of `ne`, type, offset
const tensor = (name: string, ne: number, type = 0, offset = 0): Part[] => [
  ["str", name],
  ["u32", 1],
  ["i64", ne],
  ["u32", type],
  ["u64", offset],
];

function expectCode(bytes: Uint8Array, code: string, message: RegExp): void {
  let err: unknown;
  try {
    parseGguf(bytes);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GgufError);
  expect((err as GgufError).code).toBe(code);
  expect((err as GgufError).message).toMatch(message);
}

describe("parseGguf errors", () => {
  it("invalid_magic", () =>
    expectCode(
      raw([
        ["raw", [0x50, 0x4b, 3, 4]],
        ["u32", 3],
      ]),
      "invalid_magic",
      /"PK.*expected "GGUF"/,
    ));
  it("unsupported_version: v1, v4 and a big-endian file", () => {
    expectCode(raw(head(0, 0, 1)), "unsupported_version", /version 1, expected 2 or 3 .*v1/);
    expectCode(raw(head(0, 0, 4)), "unsupported_version", /version 4, expected 2 or 3/);
    expectCode(raw(head(0, 0, 0x03000000)), "unsupported_version", /big-endian/);
  });
  it("reads version 2", () => expect(parseGguf(raw(head(0, 0, 2))).version).toBe(2));
  it("truncated_file: header cut short, and tensor data past the end", () => {
    expectCode(raw([MAGIC, ["u32", 3], ["u32", 0]]), "truncated_file", /tensor count needs 8 bytes at offset 8/);
    expectCode(
      raw([...head(1, 0), ...tensor("w", 8)]),
      "truncated_file",
      /tensor "w" \(F32 \[8\], 32 bytes at 64\) ends past/,
    );
  });
  it("validation_overflow: counts larger than the file could hold, before allocating", () => {
    expectCode(
      raw(head(2 ** 40, 0)),
      "validation_overflow",
      /tensor count is 1099511627776 .* exceed the 8 bytes left/,
    );
    expectCode(
      raw([...head(0, 1), ["str", "k"], ["u32", 9], ["u32", 4], ["u64", 2n ** 62n]]),
      "validation_overflow",
      /length of array "k"/,
    );
    expectCode(raw([...head(0, 1), ["u64", 2n ** 63n]], 64), "validation_overflow", /key 0 length/);
  });
  it("invalid_metadata: bad value type, bad bool, empty key, array of arrays, malformed UTF-8", () => {
    expectCode(raw([...head(0, 1), ["str", "k"], ["u32", 13]], 64), "invalid_metadata", /type of "k" is 13 .*0–12/);
    expectCode(
      raw([...head(0, 1), ["str", "k"], ["u32", 7], ["raw", [2]]], 64),
      "invalid_metadata",
      /bool stored as 2/,
    );
    expectCode(raw([...head(0, 1), ["str", ""], ["u32", 0], ["raw", [0]]], 64), "invalid_metadata", /key 0 is empty/);
    expectCode(
      raw([...head(0, 1), ["str", "k"], ["u32", 9], ["u32", 9], ["u64", 0]], 64),
      "invalid_metadata",
      /array of arrays/,
    );
    expectCode(
      raw([...head(0, 1), ["u64", 2], ["raw", [0xc3, 0x28]], ["u32", 0], ["raw", [0]]], 64),
      "invalid_metadata",
      /not valid UTF-8/,
    );
  });
  it("duplicate_name: keys and tensors", () => {
    const kv: Part[] = [
      ["str", "k"],
      ["u32", 0],
      ["raw", [1]],
    ];
    expectCode(raw([...head(0, 2), ...kv, ...kv]), "duplicate_name", /key "k" appears twice/);
    expectCode(
      raw([...head(2, 0), ...tensor("w", 1), ...tensor("w", 1, 0, 32)], 64),
      "duplicate_name",
      /tensor "w" appears twice/,
    );
  });
  it("invalid_alignment: not a u32 power of two", () => {
    expectCode(
      raw([...head(0, 1), ["str", "general.alignment"], ["u32", 4], ["u32", 24]]),
      "invalid_alignment",
      /u32 24/,
    );
    expectCode(
      raw([...head(0, 1), ["str", "general.alignment"], ["u32", 5], ["u32", 32]]),
      "invalid_alignment",
      /i32 32/,
    );
  });
  it("tensor_invalid_info: too many dims, name too long, negative ne, ne[0] not a block multiple", () => {
    expectCode(raw([...head(1, 0), ["str", "w"], ["u32", 5]], 64), "tensor_invalid_info", /5 dims, expected at most 4/);
    expectCode(
      raw([...head(1, 0), ...tensor("x".repeat(64), 1)]),
      "tensor_invalid_info",
      /64 bytes, expected at most 63/,
    );
    expectCode(raw([...head(1, 0), ...tensor("w", -1)]), "tensor_invalid_info", /ne\[0\] = -1/);
    expectCode(
      raw([...head(1, 0), ...tensor("w", 33, 8)], 64),
      "tensor_invalid_info",
      /Q8_0 with ne\[0\] = 33, expected a multiple of .*32/,
    );
  });
  it("unsupported_dtype: a removed ggml type id, and decoding a type lorakit does not decode", () => {
    expectCode(raw([...head(1, 0), ...tensor("w", 1, 4)]), "unsupported_dtype", /ggml type 4 .* does not define/);
    const p = parseGguf(raw([...head(1, 0), ...tensor("w", 256, 12)], 200));
    expect(() => p.toFloat32("w")).toThrow(/Q4_K, which lorakit does not decode/);
  });
  it("invalid_offset: tensors not packed in order", () => {
    expectCode(raw([...head(1, 0), ...tensor("w", 1, 0, 32)], 64), "invalid_offset", /offset 32, expected 0/);
  });
  it("missing_tensor: lookup of an unknown name", () => {
    const p = parseGguf(serializeGguf({}, [{ name: "a", shape: [1], type: "F32", data: new Uint8Array(4) }]));
    expect(() => p.info("b")).toThrow(expect.objectContaining({ code: "missing_tensor" }));
  });
});

describe("serializeGguf errors", () => {
  const f =
    (md: Record<string, GgufValue>, tensors: Parameters<typeof serializeGguf>[1] = []) =>
    () =>
      serializeGguf(md, tensors);
  it("invalid_metadata: out-of-range integers, wrong JS types", () => {
    expect(f({ k: { type: "u8", value: 256 } })).toThrow(
      expect.objectContaining({
        code: "invalid_metadata",
        message: expect.stringMatching(/"k" is u8 256, expected an integer in \[0, 255\]/),
      }),
    );
    expect(f({ k: { type: "u64", value: 1 as unknown as bigint } })).toThrow(/expected a bigint/);
  });
  it("tensor_invalid_info and unsupported_dtype", () => {
    expect(f({}, [{ name: "w", shape: [3], type: "F32", data: new Uint8Array(8) }])).toThrow(
      expect.objectContaining({
        code: "tensor_invalid_info",
        message: expect.stringMatching(/8 data bytes, expected 12/),
      }),
    );
    expect(f({}, [{ name: "w", shape: [31], type: "Q8_0", data: new Uint8Array(34) }])).toThrow(/multiple of 32/);
    expect(f({}, [{ name: "w", shape: [1], type: "Q9_9", data: new Uint8Array(1) }])).toThrow(
      expect.objectContaining({ code: "unsupported_dtype" }),
    );
  });
  it("duplicate_name and invalid_alignment", () => {
    const t = { name: "w", shape: [1], type: "F32", data: new Uint8Array(4) };
    expect(f({}, [t, t])).toThrow(expect.objectContaining({ code: "duplicate_name" }));
    expect(f({ "general.alignment": { type: "u32", value: 12 } })).toThrow(
      expect.objectContaining({ code: "invalid_alignment" }),
    );
  });
});

describe("fuzz (seeded): mutated and truncated files throw GgufError or parse", () => {
  const valid = serializeGguf(
    {
      "general.architecture": { type: "string", value: "llama" },
      "a.b": { type: "array", itemType: "string", value: ["x", "yz"] },
      "a.c": { type: "array", itemType: "f32", value: [1, 2, 3] },
      "a.d": { type: "u64", value: 7n },
    },
    [
      { name: "w", shape: [32, 2], type: "Q8_0", data: new Uint8Array(68) },
      { name: "v", shape: [4], type: "F16", data: new Uint8Array(8) },
    ],
  );
  const check = (bytes: Uint8Array): void => {
    try {
      const p = parseGguf(bytes);
      for (const n of p.names()) p.toFloat32(n);
    } catch (e) {
      if (!(e instanceof LoraError)) throw e;
      expect(e).toBeInstanceOf(GgufError);
    }
  };
  it("byte mutations", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { minLength: 1, maxLength: 6 }),
        (edits) => {
          const b = valid.slice();
          for (const [i, v] of edits) b[i] = v;
          check(b);
        },
      ),
      { seed: 1313, numRuns: 2000 },
    );
  });
  it("every truncation", () => {
    for (let n = 0; n < valid.length; n++) check(valid.subarray(0, n));
  });
});

describe("fuzz (seeded): ggufToAdapter on mutated adapters throws LoraErrors only", () => {
  const rnd = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1));
  const module = (path: string) => ({
    modulePath: path,
    kind: "linear" as const,
    down: { data: rnd(32 * 2), rows: 32, cols: 2 },
    up: { data: rnd(2 * 32), rows: 2, cols: 32 },
    r: 2,
    alpha: 4,
    scaling: 2,
    fanInFanOut: false,
    dtype: "F32" as const,
  });
  const valid = adapterToGguf(
    {
      format: "mlx",
      config: {},
      warnings: [],
      modules: [module("model.layers.0.self_attn.q_proj"), module("model.layers.0.mlp.up_proj")],
    },
    { architecture: "llama", heads: { nHead: 2, nHeadKv: 2 } },
  );
  it("byte mutations", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const b = valid.slice();
          for (const [i, v] of edits) b[i] = v;
          try {
            ggufToAdapter(b, { heads: { nHead: 2, nHeadKv: 2 } });
          } catch (e) {
            expect(e).toBeInstanceOf(LoraError);
          }
        },
      ),
      { seed: 1314, numRuns: 1500 },
    );
  });
});

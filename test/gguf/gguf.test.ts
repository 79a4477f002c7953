// GGUF reader and writer: real files llama.cpp wrote (read, cross-checked with @huggingface/gguf, re-serialized byte
// for byte), every value type through the writer and back, and ggml's own Q8_0/Q4_0 reference output.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodeF16 } from "../../src/dtype/f16.js";
import {
  dequantizeQ4_0,
  dequantizeQ8_0,
  encodeGgmlTensor,
  quantizeQ4_0,
  quantizeQ8_0,
} from "../../src/io/ggml-quant.js";
import { parseGguf, serializeGguf } from "../../src/io/gguf.js";
import type { GgufValue } from "../../src/io/gguf-types.js";
import { crossCheck, GGUF_FIXTURES, GOLDEN } from "./helpers.js";

function reserialize(bytes: Uint8Array): Uint8Array {
  const p = parseGguf(bytes);
  return serializeGguf(
    p.metadata,
    p.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: p.bytes(t.name) })),
  );
}

describe("real GGUF files written by llama.cpp", () => {
  for (const f of ["ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"]) {
    it(`${f}: parses, agrees with @huggingface/gguf, re-serializes byte for byte`, async () => {
      const bytes = new Uint8Array(readFileSync(join(GGUF_FIXTURES, f)));
      const p = parseGguf(bytes);
      expect(p.version).toBe(3);
      const tokens = p.metadata.get("tokenizer.ggml.tokens");
      expect(tokens?.type).toBe("array");
      expect((tokens as { value: unknown[] }).value.length).toBeGreaterThan(1000);
      await crossCheck(bytes, p);
      expect(Buffer.from(reserialize(bytes)).equals(Buffer.from(bytes))).toBe(true);
    });
  }

  const golden = GOLDEN;
  const variants = golden
    ? readdirSync(golden).filter((d) => {
        try {
          readFileSync(join(golden, d, "llamacpp-gguf", "adapter.gguf"));
          return true;
        } catch {
          return false;
        }
      })
    : [];
  if (!golden)
    it.skip("peft-golden adapters: skipped, ../shared/fixtures/peft-golden not found (set LORAKIT_SHARED)", () => {});
  for (const v of variants) {
    it(`${v}/llamacpp-gguf/adapter.gguf: parses, cross-checks, values equal the PEFT tensors`, async () => {
      const bytes = new Uint8Array(readFileSync(join(golden!, v, "llamacpp-gguf", "adapter.gguf")));
      const p = parseGguf(bytes);
      expect(p.metadata.get("general.type")?.value).toBe("adapter");
      expect(p.metadata.get("adapter.type")?.value).toBe("lora");
      await crossCheck(bytes, p);
      expect(Buffer.from(reserialize(bytes)).equals(Buffer.from(bytes))).toBe(true);
      for (const name of p.names()) {
        const t = p.info(name);
        const x = p.toFloat32(name);
        expect(x.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        expect(x.every(Number.isFinite)).toBe(true);
      }
    });
  }
});

describe("writer: every value type and tensor type, read back by both parsers", () => {
  it("round-trips scalars, arrays and F32/F16/BF16/Q8_0/Q4_0 tensors", async () => {
    const metadata: Record<string, GgufValue> = {
      "general.architecture": { type: "string", value: "llama" },
      "t.u8": { type: "u8", value: 255 },
      "t.i8": { type: "i8", value: -128 },
      "t.u16": { type: "u16", value: 65535 },
      "t.i16": { type: "i16", value: -32768 },
      "t.u32": { type: "u32", value: 4294967295 },
      "t.i32": { type: "i32", value: -2147483648 },
      "t.f32": { type: "f32", value: Math.fround(0.1) },
      "t.f64": { type: "f64", value: 0.1 },
      "t.bool": { type: "bool", value: true },
      "t.string": { type: "string", value: "héllo ✓" },
      "t.u64": { type: "u64", value: 2n ** 64n - 1n },
      "t.i64": { type: "i64", value: -(2n ** 63n) },
      "t.empty": { type: "string", value: "" },
      "t.arr.i32": { type: "array", itemType: "i32", value: [1, -2, 3] },
      "t.arr.str": { type: "array", itemType: "string", value: ["a", "", "ü"] },
      "t.arr.bool": { type: "array", itemType: "bool", value: [true, false] },
      "t.arr.f32": { type: "array", itemType: "f32", value: [Math.fround(1.5), -0] },
      "t.arr.empty": { type: "array", itemType: "u8", value: [] },
    };
    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 3);
    const tensors = (["F32", "F16", "BF16", "Q8_0", "Q4_0"] as const).map((type) => ({
      name: `w.${type}`,
      shape: [32, 2],
      type,
      data: encodeGgmlTensor(type, x),
    }));
    const bytes = serializeGguf(metadata, tensors);
    const p = parseGguf(bytes);
    for (const [k, v] of Object.entries(metadata)) expect(p.metadata.get(k), k).toEqual(v);
    expect(p.toFloat32("w.F32")).toEqual(x);
    for (const t of ["F16", "BF16", "Q8_0", "Q4_0"]) {
      const y = p.toFloat32(`w.${t}`);
      const tol = t === "Q4_0" ? 0.5 : t === "Q8_0" ? 0.02 : t === "BF16" ? 0.02 : 0.002;
      for (let i = 0; i < x.length; i++) expect(Math.abs(y[i]! - x[i]!), `${t}[${i}]`).toBeLessThanOrEqual(tol);
    }
    await crossCheck(bytes, p);
    expect(p.dataStart % 32).toBe(0);
  });

  it("honours general.alignment", () => {
    const bytes = serializeGguf({ "general.alignment": { type: "u32", value: 64 } }, [
      { name: "a", shape: [3], type: "F32", data: new Uint8Array(12) },
      { name: "b", shape: [1], type: "F32", data: new Uint8Array(4) },
    ]);
    const p = parseGguf(bytes);
    expect(p.alignment).toBe(64);
    expect(p.dataStart % 64).toBe(0);
    expect(p.info("b").offset).toBe(64);
  });
});

describe("Q8_0 / Q4_0: bit-exact to ggml's reference (quant-golden.bin, made by make-quant-golden.c)", () => {
  const buf = readFileSync(join(GGUF_FIXTURES, "quant-golden.bin"));
  const u8 = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = new DataView(u8.buffer, u8.byteOffset).getUint32(0, true);
  const x = new Float32Array(u8.slice(4, 4 + 4 * n).buffer);
  const q8 = u8.subarray(4 + 4 * n, 4 + 4 * n + (n / 32) * 34);
  const q4 = u8.subarray(4 + 4 * n + (n / 32) * 34, 4 + 4 * n + (n / 32) * 52);

  it("quantizeQ8_0 equals quantize_row_q8_0_ref byte for byte", () => {
    expect(n).toBe(2048);
    expect(Buffer.from(quantizeQ8_0(x)).equals(Buffer.from(q8))).toBe(true);
  });
  it("quantizeQ4_0 equals quantize_row_q4_0_ref byte for byte", () => {
    expect(Buffer.from(quantizeQ4_0(x)).equals(Buffer.from(q4))).toBe(true);
  });
  it("dequantize: within half a step of the input (plus the f16 rounding of d), for every block", () => {
    const y8 = dequantizeQ8_0(q8, n);
    const y4 = dequantizeQ4_0(q4, n);
    const v8 = new DataView(q8.buffer, q8.byteOffset);
    const v4 = new DataView(q4.buffer, q4.byteOffset);
    for (let b = 0; b < n / 32; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
      // q·d16 − x = (q·d − x) + q·(d16 − d): half a step plus the f16 error of d times the largest q
      const d8 = decodeF16(v8.getUint16(b * 34, true));
      const d4 = Math.abs(decodeF16(v4.getUint16(b * 18, true)));
      const tol8 = 0.5 * d8 + 127 * Math.abs(d8 - amax / 127) + 1e-30;
      // Q4_0 maps x = −8·d … +8·d onto nibbles 0…15, so the largest value of the other sign loses a whole step
      const tol4 = d4 + 8 * Math.abs(d4 - amax / 8) + 1e-30;
      for (let j = 0; j < 32; j++) {
        const i = b * 32 + j;
        expect(Math.abs(y8[i]! - x[i]!)).toBeLessThanOrEqual(tol8 * (1 + 1e-6));
        expect(Math.abs(y4[i]! - x[i]!)).toBeLessThanOrEqual(tol4 * (1 + 1e-6));
      }
    }
  });
});

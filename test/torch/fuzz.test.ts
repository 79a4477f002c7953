// Fuzzing the torch.save reader (fixed seed, bounded runs): random bytes, random opcode streams, mutated golden
// .bin files and random strided views must either read or throw a TorchFileError / unsupported_format — never
// another exception, never a hang — and a read that succeeds gives every tensor exactly prod(shape) elements.
// Random views of a float32 storage must equal the index formula x[i] = storage[offset + Σ i_j·stride_j].

import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AdapterFormatError,
  DTYPE_BITS,
  LoraError,
  loadPeftAdapter,
  parseTorchFile,
  readTorchFile,
  TorchFileError,
} from "../../src/index.js";
import { SEED } from "../helpers/seed.js";
import { bytesOf, f32, PROTO2, STOP, statePickle, type TensorSpec, tensor, torchLegacy, torchZip } from "./build.js";
import { BIN_VARIANTS, PEFT_GOLDEN } from "./golden.js";

/** Reads; on success checks the invariants. Returns the error code or "ok". */
function readOrCode(bytes: Uint8Array): string {
  try {
    const file = readTorchFile(bytes);
    for (const t of file.tensors.values()) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      expect(t.bytes.length * 8).toBe(n * DTYPE_BITS[t.dtype]);
    }
    parseTorchFile(bytes); // the safetensors-shaped path accepts whatever readTorchFile accepts
    return "ok";
  } catch (err) {
    if (err instanceof TorchFileError) return err.code;
    if (err instanceof AdapterFormatError && err.code === "unsupported_format") return err.code;
    throw err;
  }
}

// Every opcode byte of protocols 0–5, plus a few that are not opcodes.
const OPCODES = [
  ..."().0123BCFGIJKLMNPQRSTUVXabcdeghijlopqrstu}]",
  ...[0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91],
  ...[0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x00, 0xff],
].map((c) => (typeof c === "string" ? c.charCodeAt(0) : c));

const token = fc.tuple(fc.constantFrom(...OPCODES), fc.uint8Array({ maxLength: 6 }));
const opcodeStream = fc.array(token, { maxLength: 40 }).map((ts) => bytesOf(PROTO2, ...ts.flat(), STOP));

const STORAGES = ["FloatStorage", "BFloat16Storage", "LongStorage", "BoolStorage", "UntypedStorage"] as const;
const ELEMENT = { FloatStorage: 4, BFloat16Storage: 2, LongStorage: 8, BoolStorage: 1, UntypedStorage: 1 };
const dimValue = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 5 }) },
  fc.constantFrom(2 ** 31 - 1, 2 ** 40),
);
const view = fc.integer({ min: 0, max: 3 }).chain((rank) =>
  fc.record({
    storage: fc.constantFrom(...STORAGES),
    offset: dimValue,
    shape: fc.array(dimValue, { minLength: rank, maxLength: rank }),
    stride: fc.array(dimValue, { minLength: rank, maxLength: rank }),
  }),
);

describe("torch.save reader fuzz (fixed seed, bounded runs)", () => {
  it("random bytes, bare and behind zip / pickle / legacy prefixes", () => {
    const prefixes = [bytesOf(), bytesOf("PK", 3, 4), bytesOf(PROTO2), torchLegacy(bytesOf(), []).subarray(0, 21)];
    fc.assert(
      fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 200 }), (prefix, body) => {
        readOrCode(bytesOf(prefix, body));
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it("random opcode streams, in a zip and in the legacy format", () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(opcodeStream, fc.boolean(), (pkl, legacy) => {
        const bytes = legacy ? torchLegacy(pkl, [["0", 4, f32([1, 2, 3, 4])]]) : torchZip(pkl, { "0": f32([1, 2]) });
        seen.add(readOrCode(bytes));
      }),
      { seed: SEED, numRuns: 3000 },
    );
    for (const c of ["pickle_invalid", "pickle_opcode_refused", "pickle_global_refused", "torch_file_invalid"])
      expect(seen).toContain(c);
  });

  it("random strided views: read exactly as torch indexes them, or refused with a code", () => {
    const seen = new Set<string>();
    const values = Array.from({ length: 16 }, (_, i) => i * 1.25 - 3);
    fc.assert(
      fc.property(fc.array(view, { minLength: 1, maxLength: 3 }), fc.boolean(), (views, legacy) => {
        const specs: TensorSpec[] = views.map((v, i) => ({ ...v, key: String(i), numel: 64 / ELEMENT[v.storage] }));
        const pkl = statePickle(specs.map((t, i) => [`t${i}`, tensor(t, legacy)]));
        const data = f32([...values, ...values, ...values, ...values].slice(0, 16));
        const bytes = legacy
          ? torchLegacy(
              pkl,
              specs.map((t) => [t.key, t.numel, data]),
            )
          : torchZip(pkl, Object.fromEntries(specs.map((t) => [t.key, data])));
        const result = readOrCode(bytes);
        seen.add(result);
        if (result !== "ok") return;
        const file = readTorchFile(bytes);
        specs.forEach((t, i) => {
          if (t.storage !== "FloatStorage") return;
          const got = [...new Float32Array(file.tensors.get(`t${i}`)!.bytes.slice().buffer)];
          const n = t.shape.reduce((a, b) => a * b, 1);
          const want = Array.from({ length: n }, (_, flat) => {
            let rest = flat;
            let src = t.offset;
            for (let d = t.shape.length - 1; d >= 0; d--) {
              src += (rest % t.shape[d]!) * t.stride[d]!;
              rest = Math.floor(rest / t.shape[d]!);
            }
            return values[src]!;
          });
          expect(got).toEqual(want);
        });
      }),
      { seed: SEED, numRuns: 600 },
    );
    expect(seen).toContain("ok");
    expect(seen).toContain("torch_file_invalid");
  });

  describe.skipIf(PEFT_GOLDEN === null)("mutated golden .bin files", () => {
    const files = BIN_VARIANTS.map(
      ([v]) => new Uint8Array(readFileSync(join(PEFT_GOLDEN ?? "", v, "adapter-bin", "adapter_model.bin"))),
    );
    it("every prefix of every file is refused with a code", () => {
      for (const f of files) {
        for (let n = 0; n < f.length; n += n < 1280 ? 1 : 61) {
          const c = readOrCode(f.subarray(0, n));
          expect(c, `prefix ${n}`).not.toBe("ok");
        }
      }
    });

    it("random byte changes in the pickles and the zip directory", () => {
      const seen = new Set<string>();
      const mutation = fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(255), fc.boolean());
      fc.assert(
        fc.property(fc.nat(files.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, ms) => {
          const f = files[which]!.slice();
          for (const [where, value, head] of ms) {
            // half the changes hit the first 2 KiB (data.pkl, or the legacy pickles), half the last 1.5 KiB
            const at = head ? Math.floor(where * Math.min(2048, f.length)) : f.length - 1 - Math.floor(where * 1536);
            f[at] = value;
          }
          seen.add(readOrCode(f));
        }),
        { seed: SEED, numRuns: 1500 },
      );
      for (const c of ["ok", "pickle_invalid", "zip_invalid"]) expect(seen).toContain(c);
    });

    it("the PEFT loader on mutated .bin files: an adapter or a LoraError, nothing else", () => {
      const configs = BIN_VARIANTS.map(([v]) =>
        readFileSync(join(PEFT_GOLDEN ?? "", v, "adapter-bin", "adapter_config.json"), "utf8"),
      );
      const seen = new Set<string>();
      fc.assert(
        fc.property(fc.nat(files.length - 1), fc.nat(2047), fc.nat(255), (which, at, value) => {
          const f = files[which]!.slice();
          f[at % f.length] = value;
          try {
            loadPeftAdapter({ config: configs[which]!, weights: f });
            seen.add("ok");
          } catch (err) {
            if (!(err instanceof LoraError)) throw err;
            seen.add(err.code);
          }
        }),
        { seed: SEED, numRuns: 400 },
      );
      expect(seen).toContain("ok");
      expect(seen.size).toBeGreaterThan(2);
    });
  });
});

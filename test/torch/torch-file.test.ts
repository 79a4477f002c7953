// readTorchFile on files built byte by byte (test/torch/build.ts): strided views materialised as torch would,
// both formats, zip64, and the zip and legacy-format structure errors. Refused opcodes and globals, malformed pickles
// and tensors that do not fit their storages are in refusals.test.ts.

import { describe, expect, it } from "vitest";
import { AdapterFormatError } from "../../src/index.js";
import { readTorchFile } from "../../src/io/torch-file.js";
import { caught, codeAndMessage } from "../helpers/errors.js";
import {
  bytesOf,
  f32,
  global,
  int,
  oneStorageZip,
  oneTensorPickle,
  PROTO2,
  REDUCE,
  STOP,
  statePickle,
  str,
  type TensorSpec,
  tensor,
  torchLegacy,
  torchZip,
  tuple,
  u32,
  u64,
  zipStored,
} from "./build.js";

const STORAGE = Array.from({ length: 12 }, (_, i) => i + 0.5); // storage "0": 12 float32 values

// Reference: x[i0, …] = storage[offset + Σ i_j·stride_j], row-major, by plain nested index arithmetic.
function strided(t: TensorSpec, values: number[]): number[] {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let flat = 0; flat < n; flat++) {
    let rest = flat;
    let src = t.offset;
    for (let d = t.shape.length - 1; d >= 0; d--) {
      src += (rest % t.shape[d]!) * t.stride[d]!;
      rest = Math.floor(rest / t.shape[d]!);
    }
    out.push(values[src]!);
  }
  return out;
}

const VIEWS: [string, Omit<TensorSpec, "storage" | "key" | "numel">][] = [
  ["contiguous", { offset: 0, shape: [3, 4], stride: [4, 1] }],
  ["transposed", { offset: 0, shape: [4, 3], stride: [1, 4] }],
  ["offset slice", { offset: 5, shape: [2, 3], stride: [4, 1] }],
  ["column", { offset: 2, shape: [3], stride: [4] }],
  ["broadcast", { offset: 7, shape: [2, 3], stride: [0, 1] }],
  ["size-1 dims", { offset: 1, shape: [1, 5, 1], stride: [99, 2, 7] }],
  ["scalar", { offset: 11, shape: [], stride: [] }],
  ["empty", { offset: 0, shape: [0, 4], stride: [4, 1] }],
];

function specs(): TensorSpec[] {
  return VIEWS.map(([, v]) => ({ storage: "FloatStorage", key: "0", numel: 12, ...v }));
}

function read(bytes: Uint8Array): ReturnType<typeof readTorchFile> {
  return readTorchFile(bytes);
}

describe("strided tensors are materialised as torch indexes them", () => {
  const zip = torchZip(statePickle(specs().map((t, i) => [VIEWS[i]![0], tensor(t)])), { "0": f32(STORAGE) });
  const legacy = torchLegacy(statePickle(specs().map((t, i) => [VIEWS[i]![0], tensor(t, true)])), [
    ["0", 12, f32(STORAGE)],
  ]);
  const zip64 = torchZip(
    statePickle(specs().map((t, i) => [VIEWS[i]![0], tensor(t)])),
    { "0": f32(STORAGE) },
    {
      zip64: true,
    },
  );
  it.each([
    ["zip", zip],
    ["legacy", legacy],
    ["zip64", zip64],
  ])("%s", (format, bytes) => {
    const file = read(bytes);
    expect(file.format).toBe(format === "legacy" ? "legacy" : "zip");
    expect([...file.tensors.keys()]).toEqual(VIEWS.map(([n]) => n));
    specs().forEach((t, i) => {
      const got = file.tensors.get(VIEWS[i]![0])!;
      expect([got.dtype, got.shape]).toEqual(["F32", t.shape]);
      expect([...new Float32Array(got.bytes.slice().buffer)], VIEWS[i]![0]).toEqual(strided(t, STORAGE));
    });
  });

  it("maps each storage type to its dtype, and UntypedStorage to bytes", () => {
    const types = [
      ["BFloat16Storage", "BF16", 2],
      ["HalfStorage", "F16", 2],
      ["DoubleStorage", "F64", 8],
      ["LongStorage", "I64", 8],
      ["IntStorage", "I32", 4],
      ["ShortStorage", "I16", 2],
      ["CharStorage", "I8", 1],
      ["ByteStorage", "U8", 1],
      ["BoolStorage", "BOOL", 1],
      ["UntypedStorage", "U8", 1],
    ] as const;
    const raw = Uint8Array.from({ length: 16 }, (_, i) => i * 3 + 1);
    const pkl = statePickle(
      types.map(([s, , size]) => [
        s,
        tensor({ storage: s, key: s, numel: 16 / size, offset: 0, shape: [16 / size], stride: [1] }),
      ]),
    );
    const file = read(torchZip(pkl, Object.fromEntries(types.map(([s]) => [s, raw]))));
    for (const [s, dtype] of types) {
      expect(file.tensors.get(s)!.dtype).toBe(dtype);
      expect([...file.tensors.get(s)!.bytes]).toEqual([...raw]);
    }
  });
});

describe("zip structure", () => {
  const good = oneStorageZip(oneTensorPickle());
  it.each([
    ["too short", bytesOf("PK", 3, 4, 0), "zip_invalid", "too short for a zip archive"],
    ["no end record", good.subarray(0, good.length - 1), "zip_invalid", "no end-of-central-directory record"],
    ["trailing bytes", bytesOf(good, 0), "zip_invalid", "no end-of-central-directory record"],
    [
      "two archives",
      zipStored([
        ["a/data.pkl", oneTensorPickle()],
        ["b/data.pkl", oneTensorPickle()],
      ]),
      "torch_file_invalid",
      "this one 2",
    ],
    ["no data.pkl", zipStored([["a/x", oneTensorPickle()]]), "torch_file_invalid", "this one 0"],
    [
      "duplicate",
      zipStored([
        ["a/data.pkl", oneTensorPickle()],
        ["a/data.pkl", oneTensorPickle()],
      ]),
      "zip_invalid",
      "appears twice",
    ],
    [
      "deflate",
      torchZip(oneTensorPickle(), { "0": f32([1]) }, { method: 8 }),
      "unsupported_format",
      "method 8 (deflate)",
    ],
    ["encrypted", torchZip(oneTensorPickle(), { "0": f32([1]) }, { flags: 1 }), "unsupported_format", "is encrypted"],
  ])("%s", (_n, bytes, c, m) => {
    expect(codeAndMessage(() => read(bytes))).toEqual([c, expect.stringContaining(m)]);
  });

  it("entry counts, offsets and zip64 values are checked against the input", () => {
    const eocd = good.length - 22;
    const count = good.slice();
    count.set(bytesOf(0xfe, 0xff, 0xfe, 0xff), eocd + 8); // 65534 entries in a small directory
    expect(codeAndMessage(() => read(count))).toEqual([
      "zip_invalid",
      expect.stringContaining("65534 entries cannot fit"),
    ]);
    const offset = good.slice();
    offset.set(u32(0x7ffffff0), eocd + 16);
    expect(codeAndMessage(() => read(offset))).toEqual([
      "zip_invalid",
      expect.stringContaining("runs past its end record"),
    ]);
    const z64 = torchZip(oneTensorPickle(), { "0": f32([1]) }, { zip64: true });
    const huge = z64.slice();
    huge.set(u64(2n ** 60n), z64.length - 22 - 20 - 56 + 48); // zip64 central directory offset
    expect(codeAndMessage(() => read(huge))).toEqual([
      "zip_invalid",
      expect.stringContaining("zip64 central directory offset is"),
    ]);
  });

  it("byteorder big is refused", () => {
    const bytes = zipStored([
      ["a/data.pkl", oneTensorPickle()],
      ["a/byteorder", bytesOf("big")],
      ["a/data/0", f32([1])],
    ]);
    const e = caught(() => read(bytes));
    expect(e).toBeInstanceOf(AdapterFormatError);
    expect([e.code, e.message]).toEqual(["unsupported_format", 'readTorchFile: byteorder is "big", expected "little"']);
  });
});

describe("legacy format", () => {
  const t = tensor({ storage: "FloatStorage", key: "k", numel: 2, offset: 0, shape: [2], stride: [1] }, true);
  const pkl = statePickle([["w", t]]);
  it("reads a valid file", () => {
    expect([...read(torchLegacy(pkl, [["k", 2, f32([3, 4])]])).tensors.get("w")!.bytes]).toEqual([...f32([3, 4])]);
  });
  it.each([
    ["bad magic", bytesOf(PROTO2, int(7), STOP), "torch_file_invalid", "is 7, not torch.save's magic number"],
    ["element count", torchLegacy(pkl, [["k", 3, f32([3, 4])]]), "torch_file_invalid", "holds 3 elements but"],
    ["cut storage", torchLegacy(pkl, [["k", 2, f32([3])]]), "torch_file_invalid", "needs 8 bytes at byte"],
    ["unknown key", torchLegacy(pkl, [["z", 2, f32([3, 4])]]), "torch_file_invalid", '"z" is not a distinct'],
    ["unlisted storage", torchLegacy(pkl, []), "torch_file_invalid", 'storage "k" is not in the key list'],
    [
      "big-endian",
      torchLegacy(pkl, [["k", 2, f32([3, 4])]], statePickle([["little_endian", bytesOf(0x89)]])),
      "unsupported_format",
      "little-endian files only",
    ],
    [
      "storage view",
      torchLegacy(
        statePickle([
          ["w", tensor({ storage: "FloatStorage", key: "k", numel: 2, offset: 0, shape: [2], stride: [1] })],
        ]),
        [["k", 2, f32([3, 4])]],
      ),
      "torch_file_invalid",
      "is not ('storage', type, key, location, numel, view)",
    ],
  ])("%s", (_n, bytes, c, m) => {
    expect(codeAndMessage(() => read(bytes))).toEqual([c, expect.stringContaining(m)]);
  });

  it("a pre-0.4 storage view is refused by name", () => {
    const id = tuple(str("storage"), global("torch", "FloatStorage"), str("k"), str("cpu"), int(2), tuple(str("j")));
    const view = bytesOf(
      global("torch._utils", "_rebuild_tensor_v2"),
      tuple(bytesOf(id, 0x51), int(0), tuple(int(2)), tuple(int(1)), bytesOf(0x89), bytesOf(0x7d)),
      REDUCE,
    );
    expect(codeAndMessage(() => read(torchLegacy(statePickle([["w", view]]), [["k", 2, f32([3, 4])]])))).toEqual([
      "unsupported_format",
      expect.stringContaining("is a view of another storage (pre-0.4 torch.save)"),
    ]);
  });
});

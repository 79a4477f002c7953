// readTorchFile on files built byte by byte (test/torch/build.ts): strided views materialised as torch would,
// both formats, zip64, and every refusal with its code and message.

import { describe, expect, it } from "vitest";
import { AdapterFormatError, LoraError, loadPeftAdapter, TorchFileError } from "../../src/index.js";
import { readTorchFile } from "../../src/io/torch-file.js";
import { caught } from "../helpers/errors.js";
import {
  bytesOf,
  EMPTY_TUPLE,
  f32,
  global,
  int,
  MARK,
  NONE,
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

function code(f: () => unknown): [string, string] {
  const e = caught(f);
  return [e.code, e.message];
}

const one = (id = tensor({ storage: "FloatStorage", key: "0", numel: 1, offset: 0, shape: [1], stride: [1] })) =>
  statePickle([["w", id]]);
const zipWith = (pkl: Uint8Array) => torchZip(pkl, { "0": f32([1]) });

describe("refusals by name: globals and opcodes", () => {
  it.each([
    ["os", "system"],
    ["builtins", "eval"],
    ["posix", "system"],
    ["torch", "load"],
    ["torch._utils", "_rebuild_device_tensor_from_numpy"],
    ["__builtin__", "getattr"],
  ])("GLOBAL %s.%s is refused before anything is built", (module, name) => {
    const pkl = bytesOf(PROTO2, global(module, name), str("echo pwned"), 0x85, REDUCE, STOP);
    const [c, m] = code(() => read(zipWith(pkl)));
    expect(c).toBe("pickle_global_refused");
    expect(m).toContain(`"${module}.${name}", which is not on lorakit's allow-list`);
    const e = caught(() => read(zipWith(pkl)));
    expect(e).toBeInstanceOf(TorchFileError);
    expect(e.details.global).toBe(`${module}.${name}`);
  });

  it("STACK_GLOBAL is checked against the same list", () => {
    const pkl = bytesOf(PROTO2, 0x8c, 8, "builtins", 0x8c, 4, "eval", 0x93, STOP);
    expect(code(() => read(zipWith(pkl)))).toEqual([
      "pickle_global_refused",
      expect.stringContaining('"builtins.eval"'),
    ]);
  });

  it("a storage type tag is not callable", () => {
    const pkl = bytesOf(PROTO2, global("torch", "FloatStorage"), EMPTY_TUPLE, REDUCE, STOP);
    expect(code(() => read(zipWith(pkl)))).toEqual([
      "pickle_global_refused",
      "readTorchFile: the pickle calls torch.FloatStorage, a type tag that lorakit does not call",
    ]);
  });

  it.each([
    [0x81, "NEWOBJ"],
    [0x69, "INST"],
    [0x6f, "OBJ"],
    [0x92, "NEWOBJ_EX"],
    [0x82, "EXT1"],
    [0x50, "PERSID"],
    [0x53, "STRING"],
  ])("opcode %i (%s) is refused by name", (op, name) => {
    const [c, m] = code(() => read(zipWith(bytesOf(PROTO2, NONE, op, STOP))));
    expect(c).toBe("pickle_opcode_refused");
    expect(m).toContain(`opcode ${name} (0x${op.toString(16)}) is refused`);
  });

  it("BUILD is accepted only as a dict's own state", () => {
    const t = tensor({ storage: "FloatStorage", key: "0", numel: 1, offset: 0, shape: [1], stride: [1] });
    const [c, m] = code(() => read(zipWith(statePickle([["w", bytesOf(t, 0x7d, 0x62)]]))));
    expect([c, m]).toEqual(["pickle_opcode_refused", expect.stringContaining("BUILD with dict[0] on TorchTensor")]);
    // an OrderedDict with _metadata state, as nn.Module.state_dict() pickles it, reads fine
    const od = bytesOf(PROTO2, global("collections", "OrderedDict"), EMPTY_TUPLE, REDUCE, MARK, str("w"), t, 0x75);
    const withState = bytesOf(od, 0x7d, str("_metadata"), 0x7d, 0x73, 0x62, STOP);
    expect([...read(zipWith(withState)).tensors.keys()]).toEqual(["w"]);
  });
});

describe("malformed pickles", () => {
  it.each([
    ["unknown opcode", bytesOf(PROTO2, 0xff), "pickle_invalid", "pickle byte 2: unknown opcode 0xff"],
    ["protocol 6", bytesOf(0x80, 6, NONE, STOP), "pickle_invalid", "protocol 6, expected 2 to 5"],
    ["stack underflow", bytesOf(PROTO2, 0x86, STOP), "pickle_invalid", "stack underflow"],
    ["missing memo", bytesOf(PROTO2, 0x68, 7, STOP), "pickle_invalid", "memo has no entry 7"],
    ["no STOP", bytesOf(PROTO2, NONE), "pickle_invalid", "needs 1 bytes but only 0 remain"],
    ["marks left", bytesOf(PROTO2, MARK, NONE, STOP), "pickle_invalid", "STOP with 1 values and 1 marks left"],
    ["SETITEMS on a list", bytesOf(PROTO2, 0x5d, MARK, NONE, NONE, 0x75, STOP), "pickle_invalid", "not a dict"],
    ["bad UTF-8", bytesOf(PROTO2, 0x8c, 1, 0xff, STOP), "pickle_invalid", "not valid UTF-8"],
    ["GLOBAL without newline", bytesOf(PROTO2, 0x63, "x".repeat(300)), "pickle_invalid", "no newline within 256"],
    ["top level not a dict", bytesOf(PROTO2, NONE, STOP), "torch_file_invalid", "holds None, expected a dict"],
    ["value not a tensor", statePickle([["w", int(3)]]), "torch_file_invalid", '"w" is 3, not a tensor'],
  ])("%s", (_name, pkl, c, m) => {
    expect(code(() => read(zipWith(pkl)))).toEqual([c, expect.stringContaining(m)]);
  });

  it("claimed lengths beyond the input are refused before anything is allocated", () => {
    for (const pkl of [
      bytesOf(PROTO2, 0x8d, u64(2n ** 62n)),
      bytesOf(PROTO2, 0x58, u32(0xffffffff)),
      bytesOf(PROTO2, 0x8e, u64(2n ** 63n + 5n)),
      bytesOf(PROTO2, 0x42, u32(0x7fffffff)),
    ])
      expect(code(() => read(zipWith(pkl)))).toEqual(["pickle_invalid", expect.stringMatching(/needs \d+ bytes/)]);
    expect(code(() => read(zipWith(bytesOf(PROTO2, 0x8b, u32(0x7fffffff)))))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("an integer's byte count is 2147483647, the limit is 64"),
    ]);
  });

  it("the stack and the memo are bounded; cycles are harmless", () => {
    const pushes = new Uint8Array((1 << 20) + 3).fill(NONE);
    pushes.set(PROTO2);
    expect(code(() => read(zipWith(pushes)))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("stack and marks hold 1048576, the limit is 1048576"),
    ]);
    const memo = new Uint8Array(3 + 5 * ((1 << 20) + 1));
    memo.set([...PROTO2, NONE]);
    for (let i = 0; i <= 1 << 20; i++) memo.set([0x72, ...u32(i)], 3 + 5 * i);
    expect(code(() => read(zipWith(memo)))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("memo holds 1048576, the limit is 1048576"),
    ]);
    // a list that contains itself, and a dict that contains itself
    const list = bytesOf(PROTO2, 0x5d, 0x71, 0, 0x68, 0, 0x61, STOP);
    expect(code(() => read(zipWith(list)))).toEqual(["torch_file_invalid", expect.stringContaining("list[1]")]);
    const dict = bytesOf(PROTO2, 0x7d, 0x71, 0, str("w"), 0x68, 0, 0x73, STOP);
    expect(code(() => read(zipWith(dict)))).toEqual(["torch_file_invalid", expect.stringContaining('"w" is dict[1]')]);
    // 100 000 nested marks cost nothing and are reported; 2^20 of them reach the cap
    const marks = bytesOf(PROTO2, ...new Array(100_000).fill(MARK), NONE, STOP);
    expect(code(() => read(zipWith(marks)))[0]).toBe("pickle_invalid");
    const many = new Uint8Array((1 << 20) + 3).fill(MARK);
    many.set(PROTO2);
    expect(code(() => read(zipWith(many)))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("stack and marks hold 1048576, the limit is 1048576"),
    ]);
    // pushing and popping forever is bounded by the count of values pushed
    const churn = new Uint8Array(2 + 2 * ((1 << 22) + 1));
    churn.set(PROTO2);
    for (let i = 2; i < churn.length; i += 2) churn.set([NONE, 0x30], i);
    expect(code(() => read(zipWith(churn)))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("values pushed reach 4194305, the limit is 4194304"),
    ]);
  });
});

describe("tensors that do not fit their storages", () => {
  const t = (o: Partial<TensorSpec>) =>
    tensor({ storage: "FloatStorage", key: "0", numel: 4, offset: 0, shape: [4], stride: [1], ...o });
  const z = (pkl: Uint8Array, data = f32([1, 2, 3, 4])) => torchZip(pkl, { "0": data });
  it.each([
    ["past the end", t({ offset: 1 }), "reaches element 4 of a storage of 4"],
    ["stride past the end", t({ shape: [2], stride: [4] }), "reaches element 4 of a storage of 4"],
    ["huge shape", t({ shape: [2 ** 30, 2 ** 30], stride: [1, 1] }), "reaches element"],
    ["size and stride lengths", t({ shape: [2, 2], stride: [1] }), "differ in length"],
    ["negative stride", t({ stride: [-1] }), "tensor stride[0] is -1, expected a non-negative integer"],
    ["missing record", t({ key: "9" }), 'storage "9" has no record archive/data/9'],
    ["claimed numel", t({ numel: 2 ** 40 }), "claims 1099511627776 × 4 bytes but its record holds 16"],
  ])("%s", (_n, pkl, m) => {
    expect(code(() => read(z(statePickle([["w", pkl]]))))).toEqual(["torch_file_invalid", expect.stringContaining(m)]);
  });

  it("a broadcast view bigger than the copy budget is refused before allocation", () => {
    const pkl = statePickle([["w", t({ numel: 4, shape: [2 ** 20, 2 ** 20], stride: [0, 0] })]]);
    expect(code(() => read(z(pkl)))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("would copy 4398046511104 bytes, over the"),
    ]);
    expect(
      readTorchFile(z(statePickle([["w", t({ shape: [8], stride: [0] })]])), { maxCopyBytes: 32 }).tensors.size,
    ).toBe(1);
    expect(
      code(() => readTorchFile(z(statePickle([["w", t({ shape: [9], stride: [0] })]])), { maxCopyBytes: 32 }))[0],
    ).toBe("pickle_limit_exceeded");
  });
});

describe("arguments", () => {
  it("invalid_argument: not bytes, or a bad maxCopyBytes", () => {
    const bytes = zipWith(one());
    expect(code(() => readTorchFile("x" as unknown as Uint8Array))).toEqual([
      "invalid_argument",
      "readTorchFile: expected a Uint8Array or ArrayBuffer, got string",
    ]);
    for (const max of [-1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(code(() => readTorchFile(bytes, { maxCopyBytes: max }))).toEqual([
        "invalid_argument",
        `readTorchFile: options.maxCopyBytes is ${max}, expected a finite number of bytes ≥ 0`,
      ]);
    const copy = bytes.slice();
    expect([...readTorchFile(copy.buffer).tensors.keys()]).toEqual(["w"]);
  });
});

describe("zip structure", () => {
  const good = zipWith(one());
  it.each([
    ["too short", bytesOf("PK", 3, 4, 0), "zip_invalid", "too short for a zip archive"],
    ["no end record", good.subarray(0, good.length - 1), "zip_invalid", "no end-of-central-directory record"],
    ["trailing bytes", bytesOf(good, 0), "zip_invalid", "no end-of-central-directory record"],
    [
      "two archives",
      zipStored([
        ["a/data.pkl", one()],
        ["b/data.pkl", one()],
      ]),
      "torch_file_invalid",
      "this one 2",
    ],
    ["no data.pkl", zipStored([["a/x", one()]]), "torch_file_invalid", "this one 0"],
    [
      "duplicate",
      zipStored([
        ["a/data.pkl", one()],
        ["a/data.pkl", one()],
      ]),
      "zip_invalid",
      "appears twice",
    ],
    ["deflate", torchZip(one(), { "0": f32([1]) }, { method: 8 }), "unsupported_format", "method 8 (deflate)"],
    ["encrypted", torchZip(one(), { "0": f32([1]) }, { flags: 1 }), "unsupported_format", "is encrypted"],
  ])("%s", (_n, bytes, c, m) => {
    expect(code(() => read(bytes))).toEqual([c, expect.stringContaining(m)]);
  });

  it("entry counts, offsets and zip64 values are checked against the input", () => {
    const eocd = good.length - 22;
    const count = good.slice();
    count.set(bytesOf(0xfe, 0xff, 0xfe, 0xff), eocd + 8); // 65534 entries in a small directory
    expect(code(() => read(count))).toEqual(["zip_invalid", expect.stringContaining("65534 entries cannot fit")]);
    const offset = good.slice();
    offset.set(u32(0x7ffffff0), eocd + 16);
    expect(code(() => read(offset))).toEqual(["zip_invalid", expect.stringContaining("runs past its end record")]);
    const z64 = torchZip(one(), { "0": f32([1]) }, { zip64: true });
    const huge = z64.slice();
    huge.set(u64(2n ** 60n), z64.length - 22 - 20 - 56 + 48); // zip64 central directory offset
    expect(code(() => read(huge))).toEqual([
      "zip_invalid",
      expect.stringContaining("zip64 central directory offset is"),
    ]);
  });

  it("byteorder big is refused", () => {
    const bytes = zipStored([
      ["a/data.pkl", one()],
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
    expect(code(() => read(bytes))).toEqual([c, expect.stringContaining(m)]);
  });

  it("a pre-0.4 storage view is refused by name", () => {
    const id = tuple(str("storage"), global("torch", "FloatStorage"), str("k"), str("cpu"), int(2), tuple(str("j")));
    const view = bytesOf(
      global("torch._utils", "_rebuild_tensor_v2"),
      tuple(bytesOf(id, 0x51), int(0), tuple(int(2)), tuple(int(1)), bytesOf(0x89), bytesOf(0x7d)),
      REDUCE,
    );
    expect(code(() => read(torchLegacy(statePickle([["w", view]]), [["k", 2, f32([3, 4])]])))).toEqual([
      "unsupported_format",
      expect.stringContaining("is a view of another storage (pre-0.4 torch.save)"),
    ]);
  });
});

describe("the PEFT loader reads .bin bytes and passes the codes on", () => {
  it("a hostile adapter_model.bin is a TorchFileError naming the global", () => {
    const pkl = bytesOf(PROTO2, global("os", "system"), str("rm -rf /"), 0x85, REDUCE, STOP);
    const e = caught(() => loadPeftAdapter({ config: { peft_type: "LORA" }, weights: zipWith(pkl) }));
    expect(e).toBeInstanceOf(LoraError);
    expect([e.code, e.message]).toEqual(["pickle_global_refused", expect.stringContaining('"os.system"')]);
  });
  it("an arbitrary pickle is not a torch.save file", () => {
    const e = caught(() =>
      loadPeftAdapter({ config: { peft_type: "LORA" }, weights: bytesOf(0x80, 4, 0x95, u64(2), NONE, STOP) }),
    );
    expect([e.code, e.message]).toEqual(["torch_file_invalid", expect.stringContaining("not torch.save's magic")]);
  });
});

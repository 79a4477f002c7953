// readTorchFile's refusals on files built byte by byte (test/torch/build.ts), each with its code and message:
// globals and opcodes refused by name, malformed pickles, tensors that do not fit their storages, bad arguments, and
// the PEFT loader passing the codes on.

import { describe, expect, it } from "vitest";
import { LoraError, loadPeftAdapter, TorchFileError } from "../../src/index.js";
import { readTorchFile } from "../../src/io/torch-file.js";
import { caught, codeAndMessage } from "../helpers/errors.js";
import {
  bytesOf,
  EMPTY_TUPLE,
  f32,
  global,
  int,
  MARK,
  NONE,
  oneStorageZip,
  oneTensorPickle,
  PROTO2,
  REDUCE,
  STOP,
  statePickle,
  str,
  type TensorSpec,
  tensor,
  torchZip,
  u32,
  u64,
} from "./build.js";

function read(bytes: Uint8Array): ReturnType<typeof readTorchFile> {
  return readTorchFile(bytes);
}

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
    const [c, m] = codeAndMessage(() => read(oneStorageZip(pkl)));
    expect(c).toBe("pickle_global_refused");
    expect(m).toContain(`"${module}.${name}", which is not on lorakit's allow-list`);
    const e = caught(() => read(oneStorageZip(pkl)));
    expect(e).toBeInstanceOf(TorchFileError);
    expect(e.details.global).toBe(`${module}.${name}`);
  });

  it("STACK_GLOBAL is checked against the same list", () => {
    const pkl = bytesOf(PROTO2, 0x8c, 8, "builtins", 0x8c, 4, "eval", 0x93, STOP);
    expect(codeAndMessage(() => read(oneStorageZip(pkl)))).toEqual([
      "pickle_global_refused",
      expect.stringContaining('"builtins.eval"'),
    ]);
  });

  it("a storage type tag is not callable", () => {
    const pkl = bytesOf(PROTO2, global("torch", "FloatStorage"), EMPTY_TUPLE, REDUCE, STOP);
    expect(codeAndMessage(() => read(oneStorageZip(pkl)))).toEqual([
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
    const [c, m] = codeAndMessage(() => read(oneStorageZip(bytesOf(PROTO2, NONE, op, STOP))));
    expect(c).toBe("pickle_opcode_refused");
    expect(m).toContain(`opcode ${name} (0x${op.toString(16)}) is refused`);
  });

  it("BUILD is accepted only as a dict's own state", () => {
    const t = tensor({ storage: "FloatStorage", key: "0", numel: 1, offset: 0, shape: [1], stride: [1] });
    const [c, m] = codeAndMessage(() => read(oneStorageZip(statePickle([["w", bytesOf(t, 0x7d, 0x62)]]))));
    expect([c, m]).toEqual(["pickle_opcode_refused", expect.stringContaining("BUILD with dict[0] on TorchTensor")]);
    // an OrderedDict with _metadata state, as nn.Module.state_dict() pickles it, reads fine
    const od = bytesOf(PROTO2, global("collections", "OrderedDict"), EMPTY_TUPLE, REDUCE, MARK, str("w"), t, 0x75);
    const withState = bytesOf(od, 0x7d, str("_metadata"), 0x7d, 0x73, 0x62, STOP);
    expect([...read(oneStorageZip(withState)).tensors.keys()]).toEqual(["w"]);
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
    expect(codeAndMessage(() => read(oneStorageZip(pkl)))).toEqual([c, expect.stringContaining(m)]);
  });

  it("claimed lengths beyond the input are refused before anything is allocated", () => {
    for (const pkl of [
      bytesOf(PROTO2, 0x8d, u64(2n ** 62n)),
      bytesOf(PROTO2, 0x58, u32(0xffffffff)),
      bytesOf(PROTO2, 0x8e, u64(2n ** 63n + 5n)),
      bytesOf(PROTO2, 0x42, u32(0x7fffffff)),
    ])
      expect(codeAndMessage(() => read(oneStorageZip(pkl)))).toEqual([
        "pickle_invalid",
        expect.stringMatching(/needs \d+ bytes/),
      ]);
    expect(codeAndMessage(() => read(oneStorageZip(bytesOf(PROTO2, 0x8b, u32(0x7fffffff)))))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("an integer's byte count is 2147483647, the limit is 64"),
    ]);
  });

  it("the stack and the memo are bounded; cycles are harmless", () => {
    const pushes = new Uint8Array((1 << 20) + 3).fill(NONE);
    pushes.set(PROTO2);
    expect(codeAndMessage(() => read(oneStorageZip(pushes)))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("stack and marks hold 1048576, the limit is 1048576"),
    ]);
    const memo = new Uint8Array(3 + 5 * ((1 << 20) + 1));
    memo.set([...PROTO2, NONE]);
    for (let i = 0; i <= 1 << 20; i++) memo.set([0x72, ...u32(i)], 3 + 5 * i);
    expect(codeAndMessage(() => read(oneStorageZip(memo)))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("memo holds 1048576, the limit is 1048576"),
    ]);
    // a list that contains itself, and a dict that contains itself
    const list = bytesOf(PROTO2, 0x5d, 0x71, 0, 0x68, 0, 0x61, STOP);
    expect(codeAndMessage(() => read(oneStorageZip(list)))).toEqual([
      "torch_file_invalid",
      expect.stringContaining("list[1]"),
    ]);
    const dict = bytesOf(PROTO2, 0x7d, 0x71, 0, str("w"), 0x68, 0, 0x73, STOP);
    expect(codeAndMessage(() => read(oneStorageZip(dict)))).toEqual([
      "torch_file_invalid",
      expect.stringContaining('"w" is dict[1]'),
    ]);
    // 100 000 nested marks cost nothing and are reported; 2^20 of them reach the cap
    const marks = bytesOf(PROTO2, ...new Array(100_000).fill(MARK), NONE, STOP);
    expect(codeAndMessage(() => read(oneStorageZip(marks)))[0]).toBe("pickle_invalid");
    const many = new Uint8Array((1 << 20) + 3).fill(MARK);
    many.set(PROTO2);
    expect(codeAndMessage(() => read(oneStorageZip(many)))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("stack and marks hold 1048576, the limit is 1048576"),
    ]);
    // pushing and popping forever is bounded by the count of values pushed
    const churn = new Uint8Array(2 + 2 * ((1 << 22) + 1));
    churn.set(PROTO2);
    for (let i = 2; i < churn.length; i += 2) churn.set([NONE, 0x30], i);
    expect(codeAndMessage(() => read(oneStorageZip(churn)))).toEqual([
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
    expect(codeAndMessage(() => read(z(statePickle([["w", pkl]]))))).toEqual([
      "torch_file_invalid",
      expect.stringContaining(m),
    ]);
  });

  it("a broadcast view bigger than the copy budget is refused before allocation", () => {
    const pkl = statePickle([["w", t({ numel: 4, shape: [2 ** 20, 2 ** 20], stride: [0, 0] })]]);
    expect(codeAndMessage(() => read(z(pkl)))).toEqual([
      "pickle_limit_exceeded",
      expect.stringContaining("would copy 4398046511104 bytes, over the"),
    ]);
    expect(
      readTorchFile(z(statePickle([["w", t({ shape: [8], stride: [0] })]])), { maxCopyBytes: 32 }).tensors.size,
    ).toBe(1);
    expect(
      codeAndMessage(() =>
        readTorchFile(z(statePickle([["w", t({ shape: [9], stride: [0] })]])), { maxCopyBytes: 32 }),
      )[0],
    ).toBe("pickle_limit_exceeded");
  });
});

describe("arguments", () => {
  it("invalid_argument: not bytes, or a bad maxCopyBytes", () => {
    const bytes = oneStorageZip(oneTensorPickle());
    expect(codeAndMessage(() => readTorchFile("x" as unknown as Uint8Array))).toEqual([
      "invalid_argument",
      "readTorchFile: expected a Uint8Array or ArrayBuffer, got string",
    ]);
    for (const max of [-1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(codeAndMessage(() => readTorchFile(bytes, { maxCopyBytes: max }))).toEqual([
        "invalid_argument",
        `readTorchFile: options.maxCopyBytes is ${max}, expected a finite number of bytes ≥ 0`,
      ]);
    const copy = bytes.slice();
    expect([...readTorchFile(copy.buffer).tensors.keys()]).toEqual(["w"]);
  });
});

describe("the PEFT loader reads .bin bytes and passes the codes on", () => {
  it("a hostile adapter_model.bin is a TorchFileError naming the global", () => {
    const pkl = bytesOf(PROTO2, global("os", "system"), str("rm -rf /"), 0x85, REDUCE, STOP);
    const e = caught(() => loadPeftAdapter({ config: { peft_type: "LORA" }, weights: oneStorageZip(pkl) }));
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

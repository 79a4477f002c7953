// One test per error code: the code, the message text and the details.
import { describe, expect, it } from "vitest";
import { caught } from "../../test/helpers/errors.js";
import { atOffset, rawSafetensors } from "../../test/helpers/safetensors.js";
import { ArgumentError, SafetensorsError } from "../errors.js";
import {
  decodeToFloat32,
  decodeToFloat64,
  parseSafetensors,
  parseSafetensorsHeader,
  serializeSafetensors,
} from "./safetensors.js";

const f32 = (shape: number[], offsets: [number, number]) => ({ dtype: "F32", shape, data_offsets: offsets });

describe("reader error codes (SAFETENSORS.md rules 1–10)", () => {
  it("header_too_small (rule 1)", () => {
    const err = caught(() => parseSafetensors(new Uint8Array(5)));
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(err.code).toBe("header_too_small");
    expect(err.message).toBe("parseSafetensors: input has 5 bytes, expected at least 8 (the u64 header length)");
  });

  it("header_too_large (rule 2), including lengths beyond 2^53", () => {
    const err = caught(() => parseSafetensors(rawSafetensors("{}", 0, { headerLength: 100_000_001n })));
    expect(err.code).toBe("header_too_large");
    expect(err.message).toBe("parseSafetensors: header length 100000001 exceeds the limit of 100000000 bytes");
    const huge = caught(() => parseSafetensors(rawSafetensors("{}", 0, { headerLength: 2n ** 64n - 1n })));
    expect(huge.code).toBe("header_too_large");
    expect(huge.message).toMatch(/header length 18446744073709551615 exceeds/);
  });

  it("header_too_large names a Git LFS pointer", () => {
    const lfs = new TextEncoder().encode("version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 307151\n");
    const err = caught(() => parseSafetensors(lfs));
    expect(err.code).toBe("header_too_large");
    expect(err.message).toMatch(/the input is a Git LFS pointer, not weights: fetch the real file with `git lfs pull`/);
    expect(err.details.isLfsPointer).toBe(true);
  });

  it("header_too_large names zip archives and pickles too", () => {
    const zip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 0, 0]);
    expect(caught(() => parseSafetensors(zip)).message).toMatch(
      /exceeds the limit of 100000000 bytes \(the input is a zip archive, as torch\.save writes for \.bin\/\.pt files; lorakit reads only safetensors\)$/,
    );
    const pickle = new Uint8Array([0x80, 0x02, 0x63, 0x63, 0x63, 0x63, 0x63, 0x63, 0x2e]);
    const err = caught(() => parseSafetensors(pickle));
    expect(err.code).toBe("header_too_large");
    expect(err.message).toMatch(
      /\(the input looks like a Python pickle; lorakit never unpickles, convert it to safetensors\)$/,
    );
  });

  it("invalid_header_length (rule 3)", () => {
    const err = caught(() => parseSafetensors(rawSafetensors("{}", 0, { headerLength: 100n })));
    expect(err.code).toBe("invalid_header_length");
    expect(err.message).toBe("parseSafetensors: header length 100 needs 108 bytes but the input has 10");
    const exact = caught(() => parseSafetensors(rawSafetensors("{}", 0, { headerLength: 100_000_000n })));
    expect(exact.code).toBe("invalid_header_length");
  });

  it("invalid_header (rule 4): bytes that are not UTF-8", () => {
    const err = caught(() => parseSafetensors(rawSafetensors(new Uint8Array([0x7b, 0xff, 0x7d]))));
    expect(err.code).toBe("invalid_header");
    expect(err.message).toBe("parseSafetensors: header of 3 bytes is not valid UTF-8");
  });

  it("invalid_header_deserialization (rule 5): not JSON, not an object, bad entries", () => {
    const cases: [string, RegExp][] = [
      ["{", /^parseSafetensors: header is not valid JSON: /],
      ["[]", /^parseSafetensors: header is an array, expected a JSON object$/],
      ["\uFEFF{}", /^parseSafetensors: header is not valid JSON \(it starts with a byte-order mark\): /],
      ["{}\0\0\0", /^parseSafetensors: header is not valid JSON: /],
      ['{"x": 1}', /^parseSafetensors: tensor "x" is 1, expected an object$/],
      [
        '{"x": {"shape": [], "data_offsets": [0, 4]}}',
        /tensor "x" has dtype missing, expected one of F4, F6_E2M3, F6_E3M2, BOOL, U8, /,
      ],
      [
        '{"x": {"dtype": "f32", "shape": [], "data_offsets": [0, 4]}}',
        /tensor "x" has dtype a string "f32", expected one of/,
      ],
      ['{"x": {"dtype": "F128", "shape": [], "data_offsets": [0, 4]}}', /tensor "x" has dtype a string "F128"/],
      [
        '{"x": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}',
        /tensor "x" has shape \[1\.5\], expected an array of safe non-negative integers/,
      ],
      ['{"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', /tensor "x" has shape \[-1\]/],
      ['{"x": {"dtype": "F32", "shape": [-0], "data_offsets": [0, 4]}}', /tensor "x" has shape \[-0\]/],
      [
        '{"x": {"dtype": "F32", "shape": [9007199254740993], "data_offsets": [0, 4]}}',
        /tensor "x" has shape \[9007199254740993\]/,
      ],
      ['{"x": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}}', /tensor "x" has shape a string "1"/],
      ['{"x": {"dtype": "F32", "shape": []}}', /tensor "x" has data_offsets missing, expected \[BEGIN, END\]/],
      ['{"x": {"dtype": "F32", "shape": [], "data_offsets": [0, 4, 8]}}', /tensor "x" has data_offsets \[0, 4, 8\]/],
      ['{"x": {"dtype": "F32", "shape": [], "data_offsets": [0, 4.5]}}', /tensor "x" has data_offsets \[0, 4\.5\]/],
      ['{"__metadata__": {"a": 1}}', /^parseSafetensors: __metadata__\["a"\] is 1, expected a string$/],
      [
        '{"__metadata__": ["a"]}',
        /^parseSafetensors: __metadata__ is an array, expected an object of strings or null$/,
      ],
      ['{"__metadata__": "a"}', /__metadata__ is a string "a", expected an object/],
      [
        '{"\\ud800": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}',
        /tensor name "\\ud800" is not valid Unicode/,
      ],
    ];
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    cases.push(
      [
        `{"x": {"dtype": "F32", "shape": ${deep}, "data_offsets": [0, 4]}}`,
        /^parseSafetensors: header nests arrays and objects deeper than 127 levels at position \d+ \(the reference parser's recursion limit\)$/,
      ],
      ['{"x": {"dtype": "F32", "shape": [[1]], "data_offsets": [0, 4]}}', /tensor "x" has shape \[\[…\]\], expected/],
      [
        `{"x": {"dtype": "F32", "shape": [${"1,".repeat(1000)}"a"], "data_offsets": [0, 4]}}`,
        /shape \[1, 1, 1, 1, 1, 1, 1, 1, … \(1001 items\)\], expected/,
      ],
      [`{"x": {"dtype": "F32", "shape": [], "data_offsets": [{}, null]}}`, /data_offsets \[\{…\}, null\], expected/],
    );
    for (const [header, message] of cases) {
      const err = caught(() => parseSafetensors(rawSafetensors(header, 4)));
      expect(err.code, header).toBe("invalid_header_deserialization");
      expect(err.message, header).toMatch(message);
    }
  });

  it("invalid_header_deserialization: a repeated __metadata__ key (serde rejects a duplicate known field)", () => {
    for (const header of [
      '{"__metadata__": null, "__metadata__": {"a": "b"}}',
      '{"__metadata__": {}, "x": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0], "k": {"__metadata__": 1}}, "\\u005f_metadata__": {}}',
    ]) {
      const err = caught(() => parseSafetensors(rawSafetensors(header)));
      expect(err.code, header).toBe("invalid_header_deserialization");
      expect(err.message).toBe('parseSafetensors: header has more than one "__metadata__" key');
    }
    // The name elsewhere (a value, a nested key, an escaped string that is not a key) is fine.
    const ok =
      '{"__metadata__": {"__metadata__": "__metadata__"}, "x": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0], "n": "\\u005f"}}';
    expect(parseSafetensors(rawSafetensors(ok)).metadata).toEqual({ __metadata__: "__metadata__" });
  });

  it("invalid_offset (rule 6): gaps, overlaps, END < BEGIN, a first tensor not at 0", () => {
    const cases: [object, string][] = [
      [
        { a: f32([1], [0, 4]), b: f32([1], [8, 12]) },
        'tensor "b" has data_offsets [8, 12], which leaves a gap: the previous tensor ends at 4',
      ],
      [
        { a: f32([2], [0, 8]), b: f32([1], [4, 8]) },
        'tensor "b" has data_offsets [4, 8], which overlaps: the previous tensor ends at 8',
      ],
      [
        { a: f32([1], [4, 8]) },
        'tensor "a" has data_offsets [4, 8], which leaves a gap: the previous tensor ends at 0',
      ],
      [{ a: f32([1], [0, 4]), b: f32([], [4, 0]) }, 'tensor "b" has data_offsets [4, 0], which END is before BEGIN'],
    ];
    for (const [header, message] of cases) {
      const err = caught(() => parseSafetensors(rawSafetensors(header, 12)));
      expect(err.code).toBe("invalid_offset");
      expect(err.message).toBe(`parseSafetensors: ${message}`);
    }
  });

  it("invalid_offset: a duplicate name leaves a gap (JSON keeps the last entry)", () => {
    const header =
      '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}';
    const err = caught(() => parseSafetensors(rawSafetensors(header, 8)));
    expect(err.code).toBe("invalid_offset");
    expect(err.message).toBe(
      'parseSafetensors: tensor "a" has data_offsets [4, 8], which leaves a gap: the previous tensor ends at 0',
    );
    expect(err.details).toMatchObject({ name: "a", dataOffsets: [4, 8], expectedBegin: 0 });
  });

  it("validation_overflow (rule 7)", () => {
    const header = { x: { dtype: "F32", shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 0] } };
    const err = caught(() => parseSafetensors(rawSafetensors(header)));
    expect(err.code).toBe("validation_overflow");
    expect(err.message).toBe(
      'parseSafetensors: tensor "x" has F32 × [1073741824, 1073741824, 1073741824], whose size overflows 2^53',
    );
    const bits = caught(() =>
      parseSafetensors(rawSafetensors({ x: { dtype: "F64", shape: [2 ** 50], data_offsets: [0, 0] } })),
    );
    expect(bits.code).toBe("validation_overflow");
  });

  it("misaligned_slice (rule 8): sub-byte dtypes with an odd bit count", () => {
    const err = caught(() =>
      parseSafetensors(rawSafetensors({ x: { dtype: "F4", shape: [3], data_offsets: [0, 2] } }, 2)),
    );
    expect(err.code).toBe("misaligned_slice");
    expect(err.message).toBe('parseSafetensors: tensor "x" has F4 × [3] = 12 bits, not a whole number of bytes');
  });

  it("tensor_invalid_info (rule 9)", () => {
    const name = "base_model.model.h.0.attn.c_attn.lora_A.weight";
    const err = caught(() => parseSafetensors(rawSafetensors({ [name]: f32([8, 4], [0, 96]) }, 96)));
    expect(err.code).toBe("tensor_invalid_info");
    expect(err.message).toBe(
      `parseSafetensors: tensor "${name}" has data_offsets [0, 96] but F32 × [8, 4] needs 128 bytes`,
    );
    expect(err.details).toMatchObject({ name, expectedBytes: 128, dataOffsets: [0, 96], shape: [8, 4] });
  });

  it("metadata_incomplete_buffer (rule 10): trailing or missing bytes", () => {
    const trailing = caught(() => parseSafetensors(rawSafetensors({ a: f32([1], [0, 4]) }, 5)));
    expect(trailing.code).toBe("metadata_incomplete_buffer");
    expect(trailing.message).toMatch(
      /^parseSafetensors: tensors end at byte \d+ \(\d+ \+ 4\) but the input has \d+ bytes$/,
    );
    const short = caught(() => parseSafetensors(rawSafetensors({ a: f32([1], [0, 4]) }, 3)));
    expect(short.code).toBe("metadata_incomplete_buffer");
  });

  it("rules apply in order: the first failing rule decides", () => {
    // Bad JSON shape (rule 5) wins over the trailing bytes of rule 10.
    expect(caught(() => parseSafetensors(rawSafetensors("[]", 7))).code).toBe("invalid_header_deserialization");
    // A gap (rule 6) in the first tensor wins over a size mismatch (rule 9) in a later one.
    const header = { a: f32([2], [0, 4]), b: f32([1], [8, 12]) };
    expect(caught(() => parseSafetensors(rawSafetensors(header, 12))).code).toBe("tensor_invalid_info");
    const gapFirst = { a: f32([1], [0, 4]), b: f32([1], [8, 12]), c: f32([5], [12, 16]) };
    expect(caught(() => parseSafetensors(rawSafetensors(gapFirst, 16))).code).toBe("invalid_offset");
  });

  it("unsupported_dtype when decoding a dtype lorakit does not compute with", () => {
    const p = parseSafetensors(rawSafetensors({ x: { dtype: "F8_E4M3", shape: [2], data_offsets: [0, 2] } }, 2));
    expect([...p.bytes("x")]).toEqual([0, 0]);
    const err = caught(() => p.toFloat32("x"));
    expect(err.code).toBe("unsupported_dtype");
    expect(err.message).toMatch(
      /^toFloat32: tensor "x" has dtype F8_E4M3, which cannot be decoded to numbers \(supported: F32, F16, BF16, F64, /,
    );
  });

  it("tensor_not_found names the tensor and similar names", () => {
    const p = parseSafetensors(rawSafetensors({ "layer.0.lora.weight": f32([1], [0, 4]) }, 4));
    const err = caught(() => p.toFloat32("x.lora.weight"));
    expect(err.code).toBe("tensor_not_found");
    expect(err.message).toBe(
      'toFloat32: no tensor named "x.lora.weight" among 1 tensors; similar: "layer.0.lora.weight"',
    );
    expect(caught(() => p.info("nope")).message).toBe('info: no tensor named "nope" among 1 tensors');
  });

  it("invalid_argument when parseSafetensorsHeader gets less than the whole header", () => {
    const bytes = rawSafetensors({ a: f32([1], [0, 4]) }, 4);
    const err = caught(() => parseSafetensorsHeader(bytes.subarray(0, 12), bytes.length));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toMatch(/^parseSafetensors: prefix has 12 bytes, expected the whole header \(\d+ bytes\)$/);
  });
});

describe("accepted edge cases", () => {
  it("leading and trailing JSON whitespace, __metadata__ null, extra fields", () => {
    const header = ` \t\r\n{"__metadata__": null, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1}}\n\t  `;
    const p = parseSafetensors(rawSafetensors(header, new Uint8Array([0, 0, 0x80, 0x3f])));
    expect(p.metadata).toBeNull();
    expect([...p.toFloat32("a")]).toEqual([1]);
  });

  it("an empty header {} with no data, and zero-size and rank-0 tensors", () => {
    expect(parseSafetensors(rawSafetensors("{}")).names()).toEqual([]);
    const header = {
      z1: { dtype: "F32", shape: [0, 3], data_offsets: [0, 0] },
      s: { dtype: "F32", shape: [], data_offsets: [0, 4] },
      z2: { dtype: "BF16", shape: [4, 0], data_offsets: [4, 4] },
      t: { dtype: "U8", shape: [2], data_offsets: [4, 6] },
    };
    const p = parseSafetensors(rawSafetensors(header, new Uint8Array([0, 0, 0x20, 0x41, 7, 8])));
    expect(p.names()).toEqual(["z1", "s", "z2", "t"]);
    expect([...p.toFloat32("s")]).toEqual([10]);
    expect(p.toFloat32("z2").length).toBe(0);
    expect(p.info("z1").shape).toEqual([0, 3]);
    expect([...p.toFloat64("t")]).toEqual([7, 8]);
  });

  it("__proto__ as a tensor name and as a metadata key", () => {
    const header =
      '{"__metadata__": {"__proto__": "m"}, "__proto__": {"dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}';
    const p = parseSafetensors(rawSafetensors(header, new Uint8Array([0xff])));
    expect(p.names()).toEqual(["__proto__"]);
    expect([...p.toFloat32("__proto__")]).toEqual([-1]);
    expect(Object.getOwnPropertyDescriptor(p.metadata, "__proto__")?.value).toBe("m");
    expect(Object.getPrototypeOf(p.metadata)).toBe(Object.prototype);
  });

  it("header key order differing from data order", () => {
    const header = { b: f32([1], [4, 8]), a: f32([1], [0, 4]) };
    const p = parseSafetensors(rawSafetensors(header, 8));
    expect(p.names()).toEqual(["a", "b"]);
  });

  it("unaligned data at every byte offset of the backing buffer, for every decodable dtype", () => {
    const values = [1, -2, 3];
    const payloads: [string, Uint8Array][] = [
      ["F32", new Uint8Array(new Float32Array(values).buffer)],
      ["F64", new Uint8Array(new Float64Array(values).buffer)],
      ["F16", new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x4200]).buffer)],
      ["BF16", new Uint8Array(new Uint16Array([0x3f80, 0xc000, 0x4040]).buffer)],
      ["I16", new Uint8Array(new Int16Array(values).buffer)],
      ["I32", new Uint8Array(new Int32Array(values).buffer)],
      ["I64", new Uint8Array(new BigInt64Array([1n, -2n, 3n]).buffer)],
      ["I8", new Uint8Array(new Int8Array(values).buffer)],
    ];
    for (const [dtype, data] of payloads) {
      const file = rawSafetensors(
        ` {"x": {"dtype": "${dtype}", "shape": [3], "data_offsets": [0, ${data.length}]}}`,
        data,
      );
      for (let off = 0; off < 8; off++) {
        const p = parseSafetensors(atOffset(file, off));
        expect([...p.toFloat32("x")], `${dtype} at ${off}`).toEqual(values);
        expect([...p.toFloat64("x")], `${dtype} at ${off}`).toEqual(values);
        expect([...p.bytes("x")]).toEqual([...data]);
      }
    }
  });

  it("a Node Buffer that is a window into a larger ArrayBuffer (the Buffer pool case)", () => {
    const file = rawSafetensors({ x: f32([2], [0, 8]) }, new Uint8Array(new Float32Array([5, 6]).buffer));
    for (let off = 1; off < 8; off++) {
      const backing = new Uint8Array(file.length + 16).fill(0xcc);
      backing.set(file, off);
      const window = Buffer.from(backing.buffer, off, file.length);
      expect(window.byteOffset).toBe(off);
      expect([...parseSafetensors(window).toFloat32("x")]).toEqual([5, 6]);
    }
  });

  it("toFloat32 returns a fresh array that does not alias the input", () => {
    const file = rawSafetensors({ x: f32([1], [0, 4]) }, new Uint8Array(new Float32Array([5]).buffer));
    const padded = atOffset(file, 8 - ((8 + file.length) % 8));
    const p = parseSafetensors(padded);
    const a = p.toFloat32("x");
    a[0] = 99;
    expect([...p.toFloat32("x")]).toEqual([5]);
  });

  it("decodeToFloat32 / decodeToFloat64 view an owned aligned buffer and copy everything else", () => {
    const owned = new Uint8Array(new Float32Array([1, 2]).buffer);
    expect(decodeToFloat32(owned, "F32", { isOwned: true }).buffer).toBe(owned.buffer);
    expect(decodeToFloat32(owned, "F32").buffer).not.toBe(owned.buffer);
    const f64 = new Uint8Array(new Float64Array([3]).buffer);
    expect(decodeToFloat64(f64, "F64", { isOwned: true }).buffer).toBe(f64.buffer);
    const shifted = atOffset(owned, 1);
    const copy = decodeToFloat32(shifted, "F32", { isOwned: true });
    expect(copy.buffer).not.toBe(shifted.buffer);
    expect([...copy]).toEqual([1, 2]);
  });

  it("accepts an ArrayBuffer", () => {
    const file = serializeSafetensors({ x: { dtype: "F32", shape: [1], data: new Float32Array([2]) } });
    expect([...parseSafetensors(file.slice().buffer).toFloat32("x")]).toEqual([2]);
  });
});

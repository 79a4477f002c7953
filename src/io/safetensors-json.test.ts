// The header JSON as the reference reads it (Rust safetensors + serde_json): repeated known fields, nesting beyond
// serde_json's recursion limit, float literals where integers belong and lone surrogates anywhere are refused;
// huge headers are read in one linear pass that stops at the first violation.

import { describe, expect, it } from "vitest";
import { rawSafetensors } from "../../test/helpers/safetensors.js";
import { parseSafetensors, SafetensorsError } from "../index.js";
import { MAX_JSON_DEPTH } from "./safetensors-json.js";

function caught(fn: () => unknown): SafetensorsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SafetensorsError) return err;
    throw err;
  }
  throw new Error("expected a SafetensorsError");
}

const ENTRY = '"dtype": "F32", "shape": [1], "data_offsets": [0, 4]';
const parseHeader = (header: string, data = 4) => parseSafetensors(rawSafetensors(header, data));

describe("header JSON as serde_json reads it", () => {
  it("a repeated dtype, shape or data_offsets inside one entry is refused", () => {
    for (const field of ['"dtype": "F32"', '"shape": [1]', '"data_offsets": [0, 4]']) {
      const header = `{"w": {${ENTRY}, ${field}}}`;
      const err = caught(() => parseHeader(header));
      expect(err.code, header).toBe("invalid_header_deserialization");
      const key = field.slice(1, field.indexOf('"', 1));
      expect(err.message).toBe(`parseSafetensors: tensor "w" has "${key}" twice (serde refuses a repeated field)`);
    }
    // An escaped spelling is the same key once decoded.
    expect(caught(() => parseHeader(`{"w": {${ENTRY}, "\\u0064type": "F32"}}`)).message).toMatch(/has "dtype" twice/);
  });

  it("repeated unknown fields, repeated metadata keys and a repeated tensor name are accepted (last wins)", () => {
    const f = parseHeader(`{"__metadata__": {"a": "1", "a": "2"}, "w": {${ENTRY}, "x": 1, "x": [2.5]}}`);
    expect(f.metadata).toEqual({ a: "2" });
    expect(f.info("w").shape).toEqual([1]);
  });

  it(`nesting: ${MAX_JSON_DEPTH} levels are accepted, one more is refused where it starts`, () => {
    // Levels: the header object (1), the entry (2), then the unknown field's arrays.
    const nest = (levels: number) => `{"w": {${ENTRY}, "x": ${"[".repeat(levels - 2)}${"]".repeat(levels - 2)}}}`;
    expect(parseHeader(nest(MAX_JSON_DEPTH)).names()).toEqual(["w"]);
    const header = nest(MAX_JSON_DEPTH + 1);
    const err = caught(() => parseHeader(header));
    expect(err.code).toBe("invalid_header_deserialization");
    const position = header.indexOf("[".repeat(MAX_JSON_DEPTH - 2)) + MAX_JSON_DEPTH - 2;
    expect(err.message).toBe(
      `parseSafetensors: header nests arrays and objects deeper than 127 levels at position ${position} (the reference parser's recursion limit)`,
    );
    expect(err.details.position).toBe(position);
    // Objects count as levels too, and so do the metadata map and the shape array.
    const objects = `{"w": {${ENTRY}, "x": ${'{"k": '.repeat(126)}1${"}".repeat(126)}}}`;
    expect(caught(() => parseHeader(objects)).message).toMatch(/deeper than 127 levels/);
  });

  it("float literals, -0 and negative numbers are not integers", () => {
    const cases: [string, string][] = [
      ['"shape": [2.0]', "shape [2.0]"],
      ['"shape": [8e0]', "shape [8e0]"],
      ['"shape": [1E+0]', "shape [1E+0]"],
      ['"shape": [-0]', "shape [-0]"],
      ['"shape": [-1]', "shape [-1]"],
      ['"shape": [1, 2.5e-3]', "shape [1, 2.5e-3]"],
      ['"data_offsets": [0, 4.0]', "data_offsets [0, 4.0]"],
      ['"data_offsets": [0e0, 4]', "data_offsets [0e0, 4]"],
    ];
    for (const [field, shown] of cases) {
      const isShape = field.startsWith('"shape"');
      const rest = isShape ? '"dtype": "F32", "data_offsets": [0, 4]' : '"dtype": "F32", "shape": [1]';
      const err = caught(() => parseHeader(`{"w": {${rest}, ${field}}}`));
      expect(err.code, field).toBe("invalid_header_deserialization");
      expect(err.message, field).toContain(`tensor "w" has ${shown}, expected`);
    }
    // Float literals in unknown fields are fine: serde ignores their type.
    expect(parseHeader(`{"w": {${ENTRY}, "scale": 2.0e0}}`).names()).toEqual(["w"]);
  });

  it("a lone surrogate is refused anywhere, as serde_json decodes every string", () => {
    for (const header of [
      `{"w": {${ENTRY}, "x": "\\ud800"}}`,
      `{"w": {${ENTRY}, "x": ["a", {"\\udc00": 1}]}}`,
      `{"w": {${ENTRY}, "\\ud83d": 1}}`,
    ]) {
      const err = caught(() => parseHeader(header));
      expect(err.code, header).toBe("invalid_header_deserialization");
      expect(err.message, header).toMatch(/^parseSafetensors: header has a string ending at position \d+ with a lone/);
    }
    // A proper pair is one character.
    expect(parseHeader(`{"w": {${ENTRY}, "x": "\\ud83d\\ude00"}}`).names()).toEqual(["w"]);
  });

  it("JSON syntax errors name the position", () => {
    const cases: [string, RegExp][] = [
      [`{"w": {${ENTRY},}}`, /not valid JSON: expected a string at position 60$/],
      [`{"w": {${ENTRY}} `, /not valid JSON: expected ',' or '}' at the end of the header$/],
      [`{"w": {${ENTRY}}}}`, /not valid JSON: unexpected characters after the header object at position 61$/],
      [`{"w": {${ENTRY}, "x": [01]}}`, /not valid JSON: expected ',' or ']' at position 68$/],
      [`{"w": {${ENTRY}, "x": "a\tb"}}`, /not valid JSON: control character in a string at position 68$/],
      [`{"w": {${ENTRY}, "x": "\\x"}}`, /not valid JSON: invalid escape in a string at position 67$/],
      [`{"w": {${ENTRY}, "x": tru}}`, /not valid JSON: expected a value at position 66$/],
      [`{"w": {${ENTRY}, "x": 1.}}`, /not valid JSON: invalid number at position 68$/],
      ["[1, 2", /not valid JSON: expected ',' or '\]' at the end of the header$/],
      ['"a" 1', /not valid JSON: unexpected characters after the value at position 4$/],
      ["7", /^parseSafetensors: header is 7, expected a JSON object$/],
    ];
    for (const [header, message] of cases) {
      const err = caught(() => parseHeader(header));
      expect(err.code, header).toBe("invalid_header_deserialization");
      expect(err.message, header).toMatch(message);
    }
  });

  it("a 98 MB header of nested arrays is refused at the first level too deep, not after reading it all", () => {
    const levels = 49_000_000;
    const prefix = `{"w": {${ENTRY}, "x": `;
    const text = new Uint8Array(prefix.length + 2 * levels + 2);
    text.set(new TextEncoder().encode(prefix), 0);
    text.fill(0x5b, prefix.length, prefix.length + levels);
    text.fill(0x5d, prefix.length + levels, prefix.length + 2 * levels);
    text.set([0x7d, 0x7d], prefix.length + 2 * levels);
    expect(text.length).toBeGreaterThan(98_000_000);
    const err = caught(() => parseSafetensors(rawSafetensors(text, 4)));
    expect(err.code).toBe("invalid_header_deserialization");
    expect(err.details.position).toBe(prefix.length + MAX_JSON_DEPTH - 2);
  });

  it("a large header of shallow arrays in an unknown field is read without building them", () => {
    // 2 M empty arrays (4 MB): skipped item by item; nothing of them is kept.
    const items = new Array(2_000_000).fill("[]").join(",");
    const f = parseHeader(`{"w": {${ENTRY}, "x": [${items}]}}`);
    expect(f.info("w")).toEqual({ name: "w", dtype: "F32", shape: [1], dataOffsets: [0, 4] });
  });
});

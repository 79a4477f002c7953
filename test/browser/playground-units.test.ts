// The playground's pure helpers, in Node: matrix text parsing and the parameter calculator.

import { describe, expect, it } from "vitest";
import {
  countParams,
  formatCount,
  formatPercent,
  formatRatio,
  readPositiveInt,
} from "../../playground/src/calculator.js";
import { formatMatrixText, InputSyntaxError, parseMatrix, parseScalar } from "../../playground/src/parse.js";

describe("playground: matrix text", () => {
  it("reads rows by line or ';' and entries by spaces or commas", () => {
    expect(parseMatrix("x", "1 2\n3, 4")).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(parseMatrix("x", " 1,2 ; 3 4 ;\n\n")).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(parseMatrix("x", "-1.5e-3 +.5 7.")).toEqual([[-0.0015, 0.5, 7]]);
    expect(parseMatrix("x", "")).toEqual([]);
  });

  it("reads JSON, and reports a JSON syntax error with the field name", () => {
    expect(parseMatrix("W", "[[1, 0], [0, 1]]")).toEqual([
      [1, 0],
      [0, 1],
    ]);
    expect(() => parseMatrix("W", "[[1, 0]")).toThrow(/^W: not valid JSON \(/);
    expect(() => parseMatrix("W", "[[1, 0]")).toThrow(InputSyntaxError);
  });

  it("passes a non-number token on as a string, so the library's validation names it", () => {
    expect(parseMatrix("x", "1 abc")).toEqual([[1, "abc"]]);
    expect(parseMatrix("x", "1 NaN -Infinity")).toEqual([[1, Number.NaN, -Infinity]]);
    expect(parseScalar("alpha", " 2.5 ")).toBe(2.5);
    expect(parseScalar("alpha", "two")).toBe("two");
    expect(() => parseScalar("alpha", " ")).toThrow(/^alpha: empty, expected a number such as 2$/);
  });

  it("writes a matrix back as text that parses to the same numbers", () => {
    const m = [
      [0.1, -2],
      [3e-7, 4],
    ];
    expect(formatMatrixText(m)).toBe("0.1 -2\n3e-7 4");
    expect(parseMatrix("x", formatMatrixText(m))).toEqual(m);
  });
});

describe("playground: parameter calculator", () => {
  it("counts LoRA r·(dIn + dOut) against full dIn·dOut", () => {
    expect(countParams(4096, 4096, 8)).toEqual({ lora: 65536, full: 16777216, fraction: 65536 / 16777216 });
    expect(countParams(2, 2, 2)).toEqual({ lora: 8, full: 4, fraction: 2 });
  });

  it("formats counts and percentages", () => {
    expect(formatCount(16777216)).toBe("16,777,216");
    expect(formatPercent(65536 / 16777216)).toBe("0.39%");
    expect(formatPercent(2)).toBe("200%");
    expect(formatPercent(0.125)).toBe("12.5%");
    expect(formatPercent(1 / 1_000_000)).toBe("0.00010%");
    expect(formatRatio(108 / 63)).toBe("1.7");
    expect(formatRatio(256)).toBe("256");
    expect(formatRatio(2048.4)).toBe("2,048");
  });

  it("accepts positive integers only, with a message naming the field", () => {
    expect(readPositiveInt("r", " 8 ")).toBe(8);
    expect(readPositiveInt("r", "0")).toBe('r must be a positive integer, got "0"');
    expect(readPositiveInt("dIn", "1.5")).toBe('dIn must be a positive integer, got "1.5"');
    expect(readPositiveInt("dOut", "")).toBe('dOut must be a positive integer, got ""');
  });
});

// safe-regex: the same whole-string matches as JavaScript's backtracking RegExp on the shared syntax (random
// patterns and texts, fast-check), the PEFT patterns seen in real configs, no hang on catastrophic patterns, and
// refusals with a reason.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileSafeRegex, MAX_PATTERN_LENGTH, SafeRegexError } from "./safe-regex.js";

// A random pattern over the alphabet {a, b, .} using every supported construct.
const pattern: fc.Arbitrary<string> = fc.letrec<{ p: string }>((tie) => ({
  p: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom("a", "b", "\\.", ".", "[ab]", "[^a]", "[a-b]", "\\w", "\\d", "(?:)"),
    fc.tuple(tie("p"), tie("p")).map(([x, y]) => `${x}${y}`),
    fc.tuple(tie("p"), tie("p")).map(([x, y]) => `(?:${x}|${y})`),
    fc.tuple(tie("p"), fc.constantFrom("*", "+", "?", "{2}", "{0,2}", "{1,}", "*?")).map(([x, q]) => `(${x})${q}`),
  ),
})).p;

describe("compileSafeRegex", () => {
  it("matches exactly what RegExp ^(?:p)$ matches (random patterns and texts)", () => {
    fc.assert(
      fc.property(pattern, fc.string({ unit: fc.constantFrom("a", "b", ".", "1"), maxLength: 8 }), (p, text) => {
        expect(compileSafeRegex(p).fullMatch(text)).toBe(new RegExp(`^(?:${p})$`).test(text));
      }),
      { numRuns: 3000 },
    );
  });

  it("PEFT-style patterns", () => {
    const cases: [string, string, boolean][] = [
      [".*\\.(q_proj|v_proj|down_proj)", "model.layers.0.self_attn.q_proj", true],
      [".*\\.(q_proj|v_proj|down_proj)", "model.layers.0.self_attn.k_proj", false],
      ["(?:.*\\.)?(?:q_proj)$", "model.layers.1.self_attn.q_proj", true],
      ["(?:.*\\.)?(?:q_proj)$", "model.layers.1.self_attn.xq_proj", false],
      ["^model\\.layers\\.\\d+\\.mlp\\.(?P<p>up|down)_proj$", "model.layers.12.mlp.down_proj", true],
      ["model.layers.[0-3].self_attn.[qv]_proj", "model.layers.3.self_attn.v_proj", true],
      ["model.layers.[0-3].self_attn.[qv]_proj", "model.layers.4.self_attn.v_proj", false],
      ["\\Aa{2,3}\\Z", "aaa", true],
      ["a{2,3}", "aaaa", false],
    ];
    for (const [p, text, want] of cases) expect(compileSafeRegex(p).fullMatch(text), `${p} on ${text}`).toBe(want);
  });

  it("catastrophic patterns run in linear time: (.*)*z, (a|a)*b, (a+)+b on long texts", () => {
    const long = "a".repeat(20_000);
    expect(compileSafeRegex("(.*)*z").fullMatch(long)).toBe(false);
    expect(compileSafeRegex("(a|a)*b").fullMatch(long)).toBe(false);
    expect(compileSafeRegex("(a+)+b").fullMatch(long)).toBe(false);
    expect(compileSafeRegex("(a+)+b").fullMatch(`${long}b`)).toBe(true);
  });

  it("refuses what it does not support, and oversized patterns, with a reason (SafeRegexError)", () => {
    const refused: [string, RegExp][] = [
      ["(?=a)", /lookaround, inline flag or backreference/],
      ["(?i)a", /lookaround, inline flag or backreference/],
      ["(a)\\1", /the escape \\1 \(not supported\)/],
      ["a\\b", /the escape \\b/],
      ["a++", /possessive/],
      ["*a", /nothing to repeat/],
      ["(a", /missing \)/],
      ["a)", /unmatched \)/],
      ["[a", /unterminated \[/],
      ["a{3,1}", /n < m/],
      ["a{5000}", /over 1000/],
      ["(((a{1000}){1000}){1000})", /over 20000 states/],
      ["a".repeat(MAX_PATTERN_LENGTH + 1), /characters, over 4096/],
    ];
    for (const [p, why] of refused) {
      let err: unknown;
      try {
        compileSafeRegex(p);
      } catch (e) {
        err = e;
      }
      expect(err, p.slice(0, 40)).toBeInstanceOf(SafeRegexError);
      expect((err as Error).message).toMatch(why);
    }
  });
});

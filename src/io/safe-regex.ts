// Regular expressions from files (PEFT's target_modules, rank_pattern, alpha_pattern keys) matched in linear time:
// the pattern is parsed (the Python `re` subset such configs use) and run as a Thompson NFA, one state set per
// input character, so no pattern can backtrack: "(.*)*z" costs O(pattern × text) like any other.
// Supported: literals, ".", classes [...] / [^...] with ranges, \d \D \w \W \s \S, escaped punctuation, groups
// (...), (?:...), (?P<name>...), alternation, * + ? {m} {m,} {m,n} (lazy forms match the same strings), ^ $ \A \Z.
// Refused (SafeRegexError): backreferences, lookaround, inline flags, possessive quantifiers, \b, and patterns
// over MAX_PATTERN_LENGTH or expanding to more than MAX_STATES states.

/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 4096;
/** Most NFA states a pattern may expand to (counted repetition included). */
export const MAX_STATES = 20_000;

/** Why a pattern was refused. */
export class SafeRegexError extends Error {}

type Pred = (c: number) => boolean;
type Node =
  | { t: "pred"; p: Pred }
  | { t: "cat"; xs: Node[] }
  | { t: "alt"; xs: Node[] }
  | { t: "rep"; x: Node; min: number; max: number } // max Infinity for unbounded
  | { t: "bol" }
  | { t: "eol" };

const isDigit: Pred = (c) => c >= 48 && c <= 57;
const isWord: Pred = (c) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c > 127;
const isSpace: Pred = (c) => c === 32 || (c >= 9 && c <= 13);
const not =
  (p: Pred): Pred =>
  (c) =>
    !p(c);

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  fail(what: string): never {
    throw new SafeRegexError(`${what} at position ${this.i}`);
  }
  peek(): string | undefined {
    return this.s[this.i];
  }
  eat(ch: string): boolean {
    if (this.s[this.i] !== ch) return false;
    this.i++;
    return true;
  }

  alt(): Node {
    const xs = [this.cat()];
    while (this.eat("|")) xs.push(this.cat());
    return xs.length === 1 ? xs[0]! : { t: "alt", xs };
  }

  cat(): Node {
    const xs: Node[] = [];
    while (this.i < this.s.length && this.peek() !== "|" && this.peek() !== ")") xs.push(this.repeat());
    return { t: "cat", xs };
  }

  repeat(): Node {
    let x = this.atom();
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === "*") [min, max] = [0, Number.POSITIVE_INFINITY];
      else if (c === "+") [min, max] = [1, Number.POSITIVE_INFINITY];
      else if (c === "?") [min, max] = [0, 1];
      else if (c === "{" && /^\{\d*(,\d*)?\}/.test(this.s.slice(this.i))) {
        const m = /^\{(\d*)(,(\d*))?\}/.exec(this.s.slice(this.i))!;
        if (m[1] === "" && m[2] === undefined) break;
        min = m[1] === "" ? 0 : Number(m[1]);
        max = m[2] === undefined ? min : m[3] === "" ? Number.POSITIVE_INFINITY : Number(m[3]);
        if (max < min) this.fail("a repetition {m,n} with n < m");
        if (min > 1000 || (max !== Number.POSITIVE_INFINITY && max > 1000)) this.fail("a repetition count over 1000");
        this.i += m[0].length - 1;
      } else break;
      this.i++;
      if (this.peek() === "+") this.fail("a possessive quantifier");
      this.eat("?"); // lazy: the same set of matches
      x = { t: "rep", x, min, max };
    }
    return x;
  }

  atom(): Node {
    const c = this.s[this.i++];
    switch (c) {
      case "(":
        return this.group();
      case "[":
        return { t: "pred", p: this.klass() };
      case ".":
        return { t: "pred", p: (ch) => ch !== 10 };
      case "^":
        return { t: "bol" };
      case "$":
        return { t: "eol" };
      case "\\":
        return this.escape(false) as Node;
      case "*":
      case "+":
      case "?":
        return this.fail("a quantifier with nothing to repeat");
      case undefined:
        return this.fail("an unexpected end of pattern");
      default: {
        const code = c.charCodeAt(0);
        return { t: "pred", p: (ch) => ch === code };
      }
    }
  }

  group(): Node {
    if (this.eat("?")) {
      if (this.eat(":")) {
        // non-capturing
      } else if (this.s.startsWith("P<", this.i)) {
        const end = this.s.indexOf(">", this.i);
        if (end < 0) this.fail("an unterminated group name");
        this.i = end + 1;
      } else this.fail("a lookaround, inline flag or backreference group (not supported)");
    }
    const x = this.alt();
    if (!this.eat(")")) this.fail("a missing )");
    return x;
  }

  // An escape outside (inClass false: returns a Node) or inside a class (returns a Pred).
  escape(inClass: boolean): Node | Pred {
    const c = this.s[this.i++];
    if (c === undefined) this.fail("a trailing backslash");
    const classes: Record<string, Pred> = {
      d: isDigit,
      D: not(isDigit),
      w: isWord,
      W: not(isWord),
      s: isSpace,
      S: not(isSpace),
    };
    const named = classes[c];
    if (named) return inClass ? named : { t: "pred", p: named };
    if (!inClass && c === "A") return { t: "bol" };
    if (!inClass && c === "Z") return { t: "eol" };
    const controls: Record<string, number> = { n: 10, t: 9, r: 13, f: 12, v: 11 };
    let code: number;
    if (c in controls) code = controls[c]!;
    else if (/[0-9A-Za-z]/.test(c)) return this.fail(`the escape \\${c} (not supported)`);
    else code = c.charCodeAt(0);
    const p: Pred = (ch) => ch === code;
    return inClass ? p : { t: "pred", p };
  }

  classChar(): number | Pred {
    const c = this.s[this.i++];
    if (c === undefined) this.fail("an unterminated [");
    if (c === "\\") {
      const e = this.escape(true) as Pred;
      const lit = this.s.charCodeAt(this.i - 1);
      return /[dDwWsS]/.test(this.s[this.i - 1]!) ? e : lit === 110 ? 10 : lit === 116 ? 9 : lit;
    }
    return c.charCodeAt(0);
  }

  klass(): Pred {
    const negate = this.eat("^");
    const parts: Pred[] = [];
    let first = true;
    while (first || this.peek() !== "]") {
      if (this.peek() === undefined) this.fail("an unterminated [");
      first = false;
      const lo = this.classChar();
      if (
        typeof lo === "number" &&
        this.peek() === "-" &&
        this.s[this.i + 1] !== "]" &&
        this.s[this.i + 1] !== undefined
      ) {
        this.i++;
        const hi = this.classChar();
        if (typeof hi !== "number" || hi < lo) this.fail("a bad range in [...]");
        parts.push((ch) => ch >= lo && ch <= hi);
      } else parts.push(typeof lo === "number" ? (ch) => ch === lo : lo);
    }
    this.i++;
    const any: Pred = (ch) => parts.some((p) => p(ch));
    return negate ? (ch) => !any(ch) && ch !== 10 : any;
  }
}

// NFA states: a predicate step, a split, an assertion, or the match state.
type State =
  | { k: "pred"; p: Pred; next: number }
  | { k: "split"; a: number; b: number }
  | { k: "bol" | "eol"; next: number }
  | { k: "match" };

class Builder {
  readonly states: State[] = [];
  add(s: State): number {
    if (this.states.length >= MAX_STATES) throw new SafeRegexError(`the pattern expands to over ${MAX_STATES} states`);
    this.states.push(s);
    return this.states.length - 1;
  }
  // Compiles `n` so that it continues to `next`; returns its entry state.
  build(n: Node, next: number): number {
    switch (n.t) {
      case "pred":
        return this.add({ k: "pred", p: n.p, next });
      case "bol":
      case "eol":
        return this.add({ k: n.t, next });
      case "cat": {
        let entry = next;
        for (let j = n.xs.length - 1; j >= 0; j--) entry = this.build(n.xs[j]!, entry);
        return entry;
      }
      case "alt": {
        let entry = this.build(n.xs[n.xs.length - 1]!, next);
        for (let j = n.xs.length - 2; j >= 0; j--)
          entry = this.add({ k: "split", a: this.build(n.xs[j]!, next), b: entry });
        return entry;
      }
      case "rep": {
        let entry = next;
        if (n.max === Number.POSITIVE_INFINITY) {
          // loop: split → x → split
          const loop = this.add({ k: "split", a: -1, b: next });
          const body = this.build(n.x, loop);
          (this.states[loop] as { a: number }).a = body;
          entry = loop;
        } else {
          for (let j = n.min; j < n.max; j++) entry = this.add({ k: "split", a: this.build(n.x, entry), b: next });
        }
        for (let j = 0; j < n.min; j++) entry = this.build(n.x, entry);
        return entry;
      }
    }
  }
}

/** A compiled pattern: whole-string matching in time linear in the text. */
export interface SafeRegex {
  readonly source: string;
  /** Whether the whole of `text` matches (Python re.fullmatch). */
  fullMatch(text: string): boolean;
}

/**
 * Compiles a Python-style regular expression for whole-string matching without backtracking.
 * @throws {SafeRegexError} for syntax outside the supported subset or a pattern over the size limits
 * @example compileSafeRegex("(.*)*z").fullMatch("a".repeat(10000)) // false, at once
 */
export function compileSafeRegex(source: string): SafeRegex {
  if (source.length > MAX_PATTERN_LENGTH)
    throw new SafeRegexError(`the pattern has ${source.length} characters, over ${MAX_PATTERN_LENGTH}`);
  const parser = new Parser(source);
  const ast = parser.alt();
  if (parser.i < source.length) parser.fail("an unmatched )");
  const b = new Builder();
  const match = b.add({ k: "match" });
  const start = b.build(ast, match);
  const states = b.states;
  return {
    source,
    fullMatch(text: string): boolean {
      let current: number[] = [];
      const mark = new Int32Array(states.length).fill(-1);
      const add = (list: number[], s: number, pos: number, gen: number) => {
        const stack = [s];
        while (stack.length > 0) {
          const id = stack.pop()!;
          if (mark[id] === gen) continue;
          mark[id] = gen;
          const st = states[id]!;
          if (st.k === "split") stack.push(st.b, st.a);
          else if (st.k === "bol") {
            if (pos === 0) stack.push(st.next);
          } else if (st.k === "eol") {
            if (pos === text.length) stack.push(st.next);
          } else list.push(id);
        }
      };
      add(current, start, 0, 0);
      for (let pos = 0; pos < text.length && current.length > 0; pos++) {
        const ch = text.charCodeAt(pos);
        const next: number[] = [];
        for (const id of current) {
          const st = states[id]!;
          if (st.k === "pred" && st.p(ch)) add(next, st.next, pos + 1, pos + 1);
        }
        current = next;
      }
      return current.some((id) => states[id]!.k === "match");
    },
  };
}

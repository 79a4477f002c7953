// safetensors header JSON → entries and metadata, read the way the reference does (Rust safetensors + serde_json):
// one pass, no recursion, linear in the header length. Only the three known fields of each entry and __metadata__
// are built as values; everything else (unknown fields) is checked for JSON syntax and skipped without allocating.
// Differences from JSON.parse, all as serde_json and the crate's derived structs behave:
//   - nesting deeper than MAX_JSON_DEPTH levels is refused (serde_json's recursion limit of 128);
//   - a repeated "dtype", "shape" or "data_offsets" inside one entry, or a second "__metadata__", is refused;
//   - numbers used as integers must be integer literals: `2.0`, `8e0` and `-0` are floats to serde_json;
//   - a \u escape that leaves a lone surrogate is refused anywhere in the header.
// A repeated tensor name keeps the last entry (a HashMap insert), as JSON.parse does.

import { SafetensorsError } from "../errors.js";

/** serde_json starts at 128 and fails when an opening bracket brings the budget to 0: 127 levels are allowed. */
export const MAX_JSON_DEPTH = 127;

/** A number literal that is not a safe non-negative integer (`1.5`, `-0`, `8e0`, `-1`, `9007199254740993`). */
export class NumberLiteral {
  constructor(readonly text: string) {}
}

/** Stand-ins for a nested array or object inside a field value (kept only for messages). */
const NESTED_ARRAY = Object.freeze({ nested: "[…]" });
const NESTED_OBJECT = Object.freeze({ nested: "{…}" });

/** A field value as read: scalars, or an array of shallow items (nested containers become stand-ins). */
export type FieldValue = string | number | boolean | null | NumberLiteral | object | FieldItem[];
type FieldItem = string | number | boolean | null | NumberLiteral | object;

export function badHeader(op: string, message: string, details: Record<string, unknown> = {}): SafetensorsError {
  return new SafetensorsError("invalid_header_deserialization", `${op}: ${message}`, details);
}

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** True when a decoded string holds a surrogate code unit that is not part of a pair. */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** A cursor over the decoded header text. Every method either advances past a valid token or throws. */
export class JsonCursor {
  i = 0;
  constructor(
    readonly s: string,
    readonly op: string,
  ) {}

  fail(what: string): SafetensorsError {
    const at = this.i < this.s.length ? `at position ${this.i}` : "at the end of the header";
    const bom = this.s.charCodeAt(0) === 0xfeff ? " (it starts with a byte-order mark)" : "";
    return badHeader(this.op, `header is not valid JSON${bom}: ${what} ${at}`, { position: this.i });
  }

  ws(): number {
    const s = this.s;
    while (this.i < s.length && isSpace(s.charCodeAt(this.i))) this.i++;
    return this.i < s.length ? s.charCodeAt(this.i) : -1;
  }

  expect(c: number, what: string): void {
    if (this.ws() !== c) throw this.fail(`expected ${what}`);
    this.i++;
  }

  /** After a member: true when another follows (a comma was eaten), false at the closing bracket. */
  more(close: number): boolean {
    const c = this.ws();
    if (c === 0x2c) {
      this.i++;
      return true;
    }
    if (c === close) {
      this.i++;
      return false;
    }
    throw this.fail(`expected ',' or '${String.fromCharCode(close)}'`);
  }

  /** A string token, decoded. Lone surrogates from \u escapes are kept; callers decide. */
  string(): string {
    const s = this.s;
    if (this.ws() !== 0x22) throw this.fail("expected a string");
    const start = ++this.i;
    let out = "";
    let from = start;
    for (;;) {
      if (this.i >= s.length) throw this.fail("unterminated string");
      const c = s.charCodeAt(this.i);
      if (c === 0x22) break;
      if (c < 0x20) throw this.fail("control character in a string");
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += s.slice(from, this.i);
      const e = s.charCodeAt(this.i + 1);
      const simple = ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        this.i += 2;
      } else if (e === 0x75 && /^[0-9a-fA-F]{4}$/.test(s.slice(this.i + 2, this.i + 6))) {
        out += String.fromCharCode(Number.parseInt(s.slice(this.i + 2, this.i + 6), 16));
        this.i += 6;
      } else throw this.fail("invalid escape in a string");
      from = this.i;
    }
    out += s.slice(from, this.i);
    this.i++;
    return out;
  }

  /** A number token: a safe non-negative integer literal as a number, anything else as a NumberLiteral. */
  number(): number | NumberLiteral {
    const s = this.s;
    const start = this.i;
    if (s.charCodeAt(this.i) === 0x2d) this.i++;
    const intStart = this.i;
    if (s.charCodeAt(this.i) === 0x30) this.i++;
    else if (isDigit(s.charCodeAt(this.i))) while (isDigit(s.charCodeAt(this.i))) this.i++;
    else throw this.fail("invalid number");
    const intEnd = this.i;
    if (s.charCodeAt(this.i) === 0x2e) {
      this.i++;
      if (!isDigit(s.charCodeAt(this.i))) throw this.fail("invalid number");
      while (isDigit(s.charCodeAt(this.i))) this.i++;
    }
    const e = s.charCodeAt(this.i);
    if (e === 0x65 || e === 0x45) {
      this.i++;
      const sign = s.charCodeAt(this.i);
      if (sign === 0x2b || sign === 0x2d) this.i++;
      if (!isDigit(s.charCodeAt(this.i))) throw this.fail("invalid number");
      while (isDigit(s.charCodeAt(this.i))) this.i++;
    }
    const text = s.slice(start, this.i);
    if (start === intStart && intEnd === this.i && intEnd - intStart <= 16) {
      const v = Number(text);
      if (Number.isSafeInteger(v)) return v;
    }
    return new NumberLiteral(text);
  }

  literal(): boolean | null {
    for (const [word, value] of LITERALS) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return value;
      }
    }
    throw this.fail("expected a value");
  }

  /** A scalar (string, number, true/false/null) at the cursor. */
  scalar(): string | number | NumberLiteral | boolean | null {
    const c = this.ws();
    if (c === 0x22) return this.string();
    if (c === 0x2d || isDigit(c)) return this.number();
    return this.literal();
  }

  /**
   * Skips one value of any kind, checking its syntax, with an explicit stack (no recursion). `depth` is the number
   * of containers already open around it. Strings are checked for lone surrogates, as serde_json decodes them all.
   */
  skip(depth: number): void {
    const stack: number[] = []; // closing bracket of each open container
    for (;;) {
      const c = this.ws();
      if (c === 0x5b || c === 0x7b) {
        if (depth + stack.length + 1 > MAX_JSON_DEPTH) throw this.depthError();
        this.i++;
        const close = c === 0x5b ? 0x5d : 0x7d;
        if (this.ws() === close) this.i++;
        else {
          stack.push(close);
          if (close === 0x7d) this.key();
          continue;
        }
      } else if (c === 0x22) {
        if (hasLoneSurrogate(this.string())) throw this.surrogateError();
      } else this.scalar();
      // A value ended: close containers until one continues with another member.
      for (;;) {
        const close = stack[stack.length - 1];
        if (close === undefined) return;
        if (this.more(close)) {
          if (close === 0x7d) this.key();
          break;
        }
        stack.pop();
      }
    }
  }

  /** An object key and its colon. Lone surrogates are refused unless the caller checks them itself. */
  key(isChecked = true): string {
    const k = this.string();
    if (isChecked && hasLoneSurrogate(k)) throw this.surrogateError();
    this.expect(0x3a, "':'");
    return k;
  }

  surrogateError(): SafetensorsError {
    return badHeader(
      this.op,
      `header has a string ending at position ${this.i - 1} with a lone surrogate (a \\u escape that is not valid Unicode)`,
      { position: this.i - 1 },
    );
  }

  depthError(): SafetensorsError {
    return badHeader(
      this.op,
      `header nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels at position ${this.i} (the reference parser's recursion limit)`,
      { position: this.i, limit: MAX_JSON_DEPTH },
    );
  }

  /**
   * A field value at nesting `depth` (containers open around it): a scalar, or an array whose items are scalars or
   * stand-ins for nested containers. After the first item that is not a safe non-negative integer, only the
   * first 8 items are kept (for the message) and the rest are counted, so memory stays bounded by the valid part.
   */
  fieldValue(depth: number): { value: FieldValue; length: number; isIndexArray: boolean } {
    const c = this.ws();
    if (c === 0x7b) {
      this.skip(depth);
      return { value: NESTED_OBJECT, length: 0, isIndexArray: false };
    }
    if (c !== 0x5b) return { value: this.scalar(), length: 0, isIndexArray: false };
    if (depth + 1 > MAX_JSON_DEPTH) throw this.depthError();
    this.i++;
    const items: FieldItem[] = [];
    let length = 0;
    let isClean = true;
    if (this.ws() === 0x5d) {
      this.i++;
      return { value: items, length, isIndexArray: true };
    }
    do {
      const k = this.ws();
      let item: FieldItem;
      if (k === 0x5b || k === 0x7b) {
        this.skip(depth + 1);
        item = k === 0x5b ? NESTED_ARRAY : NESTED_OBJECT;
      } else item = this.scalar();
      if (typeof item !== "number") isClean = false;
      if (isClean || items.length < 8) items.push(item);
      length++;
    } while (this.more(0x5d));
    return { value: items, length, isIndexArray: isClean };
  }
}

const ESCAPES: Record<number, string> = {
  34: '"',
  92: "\\",
  47: "/",
  98: "\b",
  102: "\f",
  110: "\n",
  114: "\r",
  116: "\t",
};
const LITERALS: [string, boolean | null][] = [
  ["true", true],
  ["false", false],
  ["null", null],
];

/** Text for a message: a short rendering of a field value or array item. */
export function describeValue(v: unknown, length = 0): string {
  if (v === null) return "null";
  if (v instanceof NumberLiteral) return v.text;
  if (v === NESTED_ARRAY) return "an array";
  if (v === NESTED_OBJECT) return "an object";
  if (Array.isArray(v)) return previewArray(v, length);
  if (typeof v === "string") return `a string ${JSON.stringify(v.length > 24 ? `${v.slice(0, 24)}…` : v)}`;
  return typeof v === "number" ? String(v) : `a ${typeof v}`;
}

function previewItem(x: unknown): string {
  if (x instanceof NumberLiteral) return x.text;
  if (x === NESTED_ARRAY || x === NESTED_OBJECT) return (x as { nested: string }).nested;
  if (typeof x === "string") return JSON.stringify(x.length > 12 ? `${x.slice(0, 12)}…` : x);
  return String(x);
}

function previewArray(a: readonly unknown[], length: number): string {
  const n = Math.max(length, a.length);
  return `[${a.slice(0, 8).map(previewItem).join(", ")}${n > 8 ? `, … (${n} items)` : ""}]`;
}

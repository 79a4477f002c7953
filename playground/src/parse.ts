// Text ⇄ matrix for the playground's inputs. A matrix is written as rows on separate lines (or separated by
// ";") with entries separated by spaces or commas, or as JSON ([[1, 2], [3, 4]]). Parsing checks syntax only:
// a token that is not a number is passed on as a string, so the library's own validation reports it.

/** A syntax error in one input box (not a LoraError: the text never reached the library). */
export class InputSyntaxError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = "InputSyntaxError";
    this.field = field;
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function token(t: string): number | string {
  if (NUMBER.test(t)) return Number(t);
  if (/^[+-]?(Infinity|NaN)$/.test(t)) return Number(t);
  return t;
}

/** Parses the text of input `field` into rows of numbers (strings where a token is not a number). */
export function parseMatrix(field: string, text: string): unknown {
  const s = text.trim();
  if (s.startsWith("[")) {
    try {
      return JSON.parse(s);
    } catch (e) {
      throw new InputSyntaxError(field, `${field}: not valid JSON (${(e as Error).message})`);
    }
  }
  return s
    .split(/\n|;/)
    .map((row) => row.trim())
    .filter((row) => row.length > 0)
    .map((row) =>
      row
        .split(/[\s,]+/)
        .filter((t) => t.length > 0)
        .map(token),
    );
}

/** Parses alpha: a number, or the raw text when it is not one (the library reports it). */
export function parseScalar(field: string, text: string): number | string {
  const s = text.trim();
  if (s === "") throw new InputSyntaxError(field, `${field}: empty, expected a number such as 2`);
  return token(s);
}

/** Writes a matrix as text rows, the way a person would type it. */
export function formatMatrixText(m: readonly (readonly number[])[]): string {
  return m.map((row) => row.join(" ")).join("\n");
}

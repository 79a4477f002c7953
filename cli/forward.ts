// `lorakit forward`: the mission's LoRA forward pass on JSON input {x, W, B, A, alpha}; the README's main job.

import { ArgumentError, explainLoraForward, loraForward, type MatrixInput, renderExplanation } from "../src/index.js";
import { readJsonInput } from "../src/node/index.js";
import { type CliIo, type Command, parseCount, parseOptions, UsageError } from "./usage.js";

/** The first mission example, run when no input is given. */
export const DEFAULT_INPUT = {
  x: [[1, 2]],
  W: [
    [1, 0],
    [0, 1],
  ],
  B: [[1], [1]],
  A: [[0.5, 0.5]],
  alpha: 2,
};

const HELP = `Usage: lorakit forward [FILE | - | --input FILE] [--explain] [--rslora] [--precision N]

Computes h = x·W + (alpha / r)·(x·B)·A in float64 and prints h as JSON on stdout.

Input is JSON: {"x": [[...]], "W": [[...]], "B": [[...]], "A": [[...]], "alpha": 2.0}
  x [n, dIn], W [dIn, dOut], B [dIn, r] (down-projection), A [r, dOut] (up-projection); r is inferred.
FILE (or --input FILE) names the input file; "-" reads standard input. With neither, runs the first mission
example (x=[[1,2]], W=I, B=[[1],[1]], A=[[0.5,0.5]], alpha=2).
A result entry that overflows float64 (finite inputs, |h| > 1.8e308, or Infinity - Infinity = NaN) is an error
[non_finite], exit 2, naming the entry: JSON cannot carry it, and printing null would hide it.

Options:
  --input FILE   read the JSON input from FILE ("-" reads standard input)
  --explain      print the step-by-step explanation before the result
  --rslora       scale by alpha / sqrt(r) (rsLoRA) instead of alpha / r
  --precision N  digits after the decimal point (explanation default 4; JSON output exact unless given)
  --debug        print stack traces on errors
  --help         show this help

Exit codes: 0 ok, 1 unexpected failure, 2 usage or input error.`;

const FIELDS = ["x", "W", "B", "A", "alpha"] as const;

/** Parses and checks the input document: an object with the five fields. */
export function parseForwardInput(text: string, source: string): Record<(typeof FIELDS)[number], unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${source}: malformed JSON (${(e as Error).message})`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new UsageError(
      `${source}: expected a JSON object {"x", "W", "B", "A", "alpha"}, got ${Array.isArray(doc) ? "an array" : typeof doc}`,
    );
  }
  const o = doc as Record<string, unknown>;
  for (const f of FIELDS) {
    if (!(f in o))
      throw new UsageError(
        `${source}: missing field "${f}" (expected ${f === "alpha" ? "a number" : "a matrix as an array of rows"})`,
      );
  }
  return { x: o.x, W: o.W, B: o.B, A: o.A, alpha: o.alpha };
}

/**
 * Refuses a result JSON cannot carry: finite inputs whose h overflows float64 (JSON.stringify would print null).
 * Names the first such entry; the inputs were checked finite by loraForward.
 */
function checkFinite(h: number[][]): void {
  for (let i = 0; i < h.length; i++) {
    const row = h[i]!;
    for (let j = 0; j < row.length; j++) {
      const v = row[j]!;
      if (Number.isFinite(v)) continue;
      throw new ArgumentError(
        "non_finite",
        `h[${i}, ${j}] is ${v}: the inputs are finite but the result overflows float64 (|h| > 1.8e308), which JSON cannot carry`,
        { row: i, col: j, value: String(v) },
      );
    }
  }
}

function roundDeep(m: number[][], precision: number | undefined): number[][] {
  if (precision === undefined) return m;
  return m.map((row) => row.map((v) => Number(v.toFixed(precision))));
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseOptions(
    "forward",
    argv,
    {
      input: { type: "string" },
      explain: { type: "boolean" },
      rslora: { type: "boolean" },
      precision: { type: "string" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    true,
  );
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  if (positionals.length > 1 || (positionals.length === 1 && values.input !== undefined))
    throw new UsageError(
      `expected one input (FILE, - or --input FILE), got ${[...(values.input === undefined ? [] : [`--input ${values.input}`]), ...positionals].map((a) => JSON.stringify(a)).join(", ")} (see 'lorakit forward --help')`,
    );
  const inputPath = values.input ?? positionals[0];
  const precision = values.precision === undefined ? undefined : parseCount("--precision", values.precision, 4);
  if (precision !== undefined && precision > 20)
    throw new UsageError(`--precision must be at most 20, got ${precision}`);
  let input: Record<string, unknown> = DEFAULT_INPUT;
  if (inputPath === undefined) {
    io.stderr(
      "lorakit forward: no input given; running the embedded default (mission example 1: x=[[1,2]], W=I, B=[[1],[1]], A=[[0.5,0.5]], alpha=2)\n",
    );
  } else {
    const source = inputPath === "-" ? "stdin" : inputPath;
    let text: string;
    try {
      text = readJsonInput(inputPath);
    } catch (e) {
      throw new UsageError(`cannot read ${source}: ${(e as Error).message}`);
    }
    input = parseForwardInput(text, source);
  }
  const options = values.rslora ? { scaling: "rslora" as const } : {};
  const args = [input.x, input.W, input.B, input.A] as MatrixInput[];
  const h = loraForward(args[0]!, args[1]!, args[2]!, args[3]!, input.alpha as number, options) as number[][];
  checkFinite(h);
  if (values.explain) {
    const e = explainLoraForward(input.x, input.W, input.B, input.A, input.alpha as number, options);
    io.stdout(`${renderExplanation(e, { precision: precision ?? 4 })}\n\n`);
  }
  io.stdout(`${JSON.stringify(roundDeep(h, precision))}\n`);
  return 0;
}

export const forwardCommand: Command = {
  summary: "run the LoRA forward pass on JSON input (the main job)",
  help: HELP,
  run,
};

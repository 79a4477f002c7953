// CLI plumbing shared by the commands: the usage error (exit 2), the io streams and option parsing.

import { parseArgs } from "node:util";
import { suggest } from "./suggest.js";

/** A mistake in how the command was called or in its input; printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Where a command writes; injectable for tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Whether stderr is a terminal: progress is drawn on stderr, so a redrawn bar is chosen by it, not by stdout. */
  isTTY: boolean;
}

/** The process's own streams. */
export function processIo(): CliIo {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    isTTY: Boolean(process.stderr.isTTY),
  };
}

/** A subcommand: its one-line summary, its --help text and its body (returns the exit code). */
export interface Command {
  summary: string;
  help: string;
  run: (argv: string[], io: CliIo) => Promise<number> | number;
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;

/** The parsed flags (string, string[] when `multiple`, or boolean by their spec) and the positional arguments. */
export interface ParsedOptions<O extends OptionSpec> {
  values: {
    [K in keyof O]?: O[K]["type"] extends "string" ? (O[K]["multiple"] extends true ? string[] : string) : boolean;
  };
  positionals: string[];
}

/** A negative number given as an option's value (`--precision -1`), which parseArgs would call ambiguous. */
const NEGATIVE_NUMBER = /^-(\d|\.\d|Infinity)/;

/**
 * Checks the value of each string option before parseArgs does, so the messages name the option alone (never an
 * undocumented short alias): a missing value, or an option where the value should be (`--input --explain`), is a
 * UsageError; a negative number is taken as the value (`--precision -1` becomes `--precision=-1`), for the option's
 * own check to refuse with a message about the number.
 */
function checkValues(command: string, argv: string[], options: OptionSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    out.push(arg);
    if (arg === "--") {
      out.push(...argv.slice(i + 1));
      break;
    }
    const name = arg.startsWith("--") ? arg.slice(2) : undefined;
    if (name === undefined || options[name]?.type !== "string") continue;
    const next = argv[i + 1];
    const hint = `(see 'lorakit ${command} --help')`;
    if (next === undefined) throw new UsageError(`${arg} needs a value ${hint}`);
    if (next.startsWith("-") && next !== "-" && !NEGATIVE_NUMBER.test(next))
      throw new UsageError(
        `${arg} needs a value, got the option ${JSON.stringify(next)} (write ${arg}=${next} if that is the value) ${hint}`,
      );
    out[out.length - 1] = `${arg}=${next}`;
    i++;
  }
  return out;
}

/** Parses argv strictly against `options`; unknown flags and missing values become UsageErrors. */
export function parseOptions<O extends OptionSpec>(
  command: string,
  argv: string[],
  options: O,
  allowPositionals = false,
): ParsedOptions<O> {
  const args = checkValues(command, argv, options);
  try {
    return parseArgs({ args, options, strict: true, allowPositionals }) as ParsedOptions<O>;
  } catch (e) {
    const hint = `(see 'lorakit ${command} --help')`;
    if ((e as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      // parseArgs: "Unknown option '--precison'. To specify a positional argument …"
      const option = /'([^']+)'/.exec((e as Error).message)?.[1] ?? "";
      const close = suggest(
        option,
        Object.keys(options).map((o) => `--${o}`),
      );
      throw new UsageError(`unknown option ${option}${close ? ` (did you mean ${close}?)` : ""} ${hint}`);
    }
    throw new UsageError(`${(e as Error).message.split("\n")[0]} ${hint}`);
  }
}

/** Parses a non-negative integer option value. */
export function parseCount(flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n))
    throw new UsageError(`${flag} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

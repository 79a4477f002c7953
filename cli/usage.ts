// CLI plumbing shared by the commands: the usage error (exit 2), the io streams and option parsing.

import { parseArgs } from "node:util";

/** A mistake in how the command was called or in its input; printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Where a command writes; injectable for tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  isTTY: boolean;
}

/** A subcommand: its one-line summary, its --help text and its body (returns the exit code). */
export interface Command {
  summary: string;
  help: string;
  run: (argv: string[], io: CliIo) => Promise<number> | number;
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

/** The parsed flags (string or boolean by their spec) and the positional arguments. */
export interface ParsedOptions<O extends OptionSpec> {
  values: { [K in keyof O]?: O[K]["type"] extends "string" ? string : boolean };
  positionals: string[];
}

/** Parses argv strictly against `options`; unknown flags and missing values become UsageErrors. */
export function parseOptions<O extends OptionSpec>(
  command: string,
  argv: string[],
  options: O,
  allowPositionals = false,
): ParsedOptions<O> {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals }) as ParsedOptions<O>;
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split("\n")[0]} (see 'lorakit ${command} --help')`);
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

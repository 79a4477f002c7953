#!/usr/bin/env node
// lorakit command-line entry: dispatches to a subcommand, prints errors as one line on stderr (stack traces
// only with --debug) and exits 0 (ok), 1 (unexpected failure) or 2 (usage or input error).

import { LoraError } from "../src/index.js";
import { forwardCommand } from "./forward.js";
import { inspectCommand } from "./inspect.js";
import { mergeCommand } from "./merge.js";
import { trainCommand } from "./train.js";
import { type CliIo, type Command, UsageError } from "./usage.js";

const COMMANDS: Record<string, Command> = {
  forward: forwardCommand,
  inspect: inspectCommand,
  merge: mergeCommand,
  train: trainCommand,
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: lorakit <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun 'lorakit <command> --help' for a command's options.\nExit codes: 0 ok, 1 unexpected failure, 2 usage or input error.`;
}

/** Runs the CLI on argv (without node and script) and returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  const debug = argv.includes("--debug");
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout(`${mainHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    io.stdout("lorakit 0.1.0\n");
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr(
      `lorakit: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(", ")}; see 'lorakit --help')\n`,
    );
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    const err = e as Error;
    const known = e instanceof UsageError || e instanceof LoraError;
    const code = e instanceof LoraError ? ` [${e.code}]` : "";
    io.stderr(`lorakit ${name}: ${known ? "" : "unexpected error: "}${err.message}${code}\n`);
    if (debug && err.stack) io.stderr(`${err.stack}\n`);
    return known ? 2 : 1;
  }
}

const io: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  isTTY: Boolean(process.stdout.isTTY),
};
main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`lorakit: unexpected error: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);

#!/usr/bin/env node
// lorakit command-line entry: dispatches to a subcommand, prints errors as one line on stderr (stack traces
// only with --debug) and exits 0 (ok), 1 (unexpected failure) or 2 (usage or input error). A reader that closes
// stdout early (`lorakit inspect DIR | head -1`) ends the command quietly, exit 0.

import { LoraError } from "../src/index.js";
import { convertCommand } from "./convert.js";
import { forwardCommand } from "./forward.js";
import { generateCommand } from "./generate.js";
import { inspectCommand } from "./inspect.js";
import { mergeCommand } from "./merge.js";
import { serveCommand } from "./serve.js";
import { suggest } from "./suggest.js";
import { trainCommand } from "./train.js";
import { type CliIo, type Command, processIo, UsageError } from "./usage.js";
import { lorakitVersion } from "./version.js";

const COMMANDS: Record<string, Command> = {
  convert: convertCommand,
  forward: forwardCommand,
  generate: generateCommand,
  inspect: inspectCommand,
  merge: mergeCommand,
  serve: serveCommand,
  train: trainCommand,
};

const HELP_WORDS = ["help", "--help", "-h"];
const VERSION_WORDS = ["version", "--version", "-v"];

function mainHelp(): string {
  const rows: [string, string][] = [
    ...Object.entries(COMMANDS).map(([name, c]): [string, string] => [name, c.summary]),
    ["help [command]", "show this help, or a command's (also --help, -h)"],
    ["version", "print lorakit's version (also --version, -v)"],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, summary]) => `  ${name.padEnd(width)}  ${summary}`);
  return `Usage: lorakit <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun 'lorakit <command> --help' for a command's options.\nExit codes: 0 ok, 1 unexpected failure, 2 usage or input error.`;
}

/** Says that `name` is no command, with the closest one; returns exit code 2. */
function unknownCommand(name: string, io: CliIo): number {
  const close = suggest(name, [...Object.keys(COMMANDS), "help", "version"]);
  io.stderr(
    `lorakit: unknown command "${name}"${close ? ` (did you mean "${close}"?)` : ""} (commands: ${Object.keys(COMMANDS).join(", ")}; see 'lorakit --help')\n`,
  );
  return 2;
}

/** Runs the CLI on argv (without node and script) and returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  const debug = argv.includes("--debug");
  if (name === undefined || HELP_WORDS.includes(name)) {
    const asked = name === "help" ? rest[0] : undefined;
    const topic = asked === undefined ? undefined : COMMANDS[asked];
    if (asked !== undefined && !topic) return unknownCommand(asked, io);
    io.stdout(`${topic ? topic.help : mainHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (VERSION_WORDS.includes(name)) {
    io.stdout(`lorakit ${lorakitVersion()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) return unknownCommand(name, io);
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

// stdout closed by its reader: nothing more can be shown, so stop quietly. Other stream errors stay loud.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});
process.stderr.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code !== "EPIPE") throw e;
});

main(process.argv.slice(2), processIo()).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`lorakit: unexpected error: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);

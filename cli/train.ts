// `lorakit train`: the fine-tuning demonstration. Pretrains an MLP on a source task, adapts it to a shifted target
// task (frozen base, LoRA at several ranks, full fine-tuning), prints the comparison and writes the adapter (PEFT
// format), the base model, the loss curves (SVG) and the results (JSON) to --out.

import { accessSync, constants, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  DEMO_CONFIG,
  type DemoProgress,
  type DemoResult,
  FileWriteError,
  loraModules,
  lossCurveSvg,
  mlpToSafetensors,
  runLoraDemo,
  savePeftAdapter,
} from "../src/index.js";
import { makeFolder, writeFilesAtomic } from "../src/node/index.js";
import { type CliIo, type Command, parseCount, parseOptions, UsageError } from "./usage.js";

const DEFAULT_EPOCHS = 15;
const DEFAULT_RANK = 2;
const DEFAULT_OUT = "lorakit-train-out";
/** The files written to --out, all or none (writeFilesAtomic). */
const OUT_FILES = [
  "adapter_model.safetensors",
  "adapter_config.json",
  "base_model.safetensors",
  "loss.svg",
  "results.json",
] as const;

const HELP = `Usage: lorakit train [--seed N] [--epochs N] [--rank R] [--lora-plus RATIO] [--json] [--out DIR]

Pretrains an MLP (16-128-128-3) on a source task (a 3-arm spiral in a plane of R^16), then adapts it to a target
task (the same spiral in a plane tilted by 60 degrees) five ways: frozen base, LoRA with r = 1, 2, 4, 8, and full
fine-tuning; and LoRA of rank R over a float32, a Q8_0 and a Q4_0 copy of the frozen base (QLoRA-style, gradients
through the dequantized base). Prints trainable parameters, target accuracy, source accuracy after adapting
(forgetting) and time.
Everything is generated from the seed; the same seed gives the same numbers (timings aside).

Writes to DIR, all or none: adapter_config.json + adapter_model.safetensors (the LoRA adapter of rank R, PEFT format),
base_model.safetensors (the pretrained base, PyTorch nn.Sequential keys), loss.svg (loss curves), results.json.

Options:
  --seed N          seed of data, initialisation and shuffling (default 0)
  --epochs N        adaptation epochs per method; pretraining runs 2N (default ${DEFAULT_EPOCHS})
  --rank R          rank of the adapter written to DIR; added to the comparison if not 1, 2, 4 or 8 (default ${DEFAULT_RANK})
  --lora-plus RATIO LoRA+: learning rate of 'up' = RATIO x that of 'down' (default 1, plain LoRA)
  --json            print the results as JSON on stdout instead of the table
  --out DIR         output folder, created if missing (default ./${DEFAULT_OUT})
  --debug           print stack traces on errors
  --help            show this help

Progress goes to stderr: a bar on a terminal, plain lines (about five per phase) otherwise.
Exit codes: 0 ok, 1 unexpected failure, 2 usage or input error.`;

function pct(v: number): string {
  return `${(100 * v).toFixed(1)}%`;
}

function duration(seconds: number): string {
  return seconds >= 60 ? `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s` : `${seconds.toFixed(1)}s`;
}

/** Progress reporter: a redrawn bar on a TTY (at most every 100 ms), otherwise a line every ~1/5 of a phase. */
function progressReporter(io: CliIo, tty: boolean, clock: () => number): (p: DemoProgress) => void {
  const start = clock();
  let lastDraw = 0;
  let epochLoss = 0;
  return (p) => {
    epochLoss += p.loss;
    const endOfEpoch = p.step === p.stepsPerEpoch - 1;
    const now = clock();
    const elapsed = (now - start) / 1000;
    const frac = p.doneSteps / p.totalSteps;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : 0;
    const epochText = `${p.phase} epoch ${p.epoch + 1}/${p.epochs}`;
    if (tty) {
      if (now - lastDraw >= 100 || p.doneSteps === p.totalSteps) {
        lastDraw = now;
        const width = 24;
        const filled = Math.round(frac * width);
        const bar = `${"#".repeat(filled)}${".".repeat(width - filled)}`;
        // the first steps include JIT warm-up, so the ETA is shown from 2% on
        const etaText = frac < 0.02 ? "--" : duration(eta);
        const line = `[${bar}] ${pct(frac).padStart(6)} ${epochText} loss ${p.loss.toFixed(4)} ETA ${etaText}`;
        io.stderr(`\r${line.padEnd(96)}`);
        if (p.doneSteps === p.totalSteps) io.stderr("\n");
      }
    } else if (endOfEpoch && ((p.epoch + 1) % Math.ceil(p.epochs / 5) === 0 || p.epoch + 1 === p.epochs)) {
      io.stderr(
        `${epochText} loss ${(epochLoss / p.stepsPerEpoch).toFixed(4)} (${pct(frac)} done, ETA ${duration(eta)})\n`,
      );
    }
    if (endOfEpoch) epochLoss = 0;
  };
}

function table(result: DemoResult, rank: number, out: string): string {
  const t = DEMO_CONFIG.task;
  const head = ["method", "trainable", "% of full", "target acc", "source acc", "time"];
  const rows = result.rows.map((r) => [
    r.method,
    String(r.trainableParams),
    pct(r.fractionOfFull),
    pct(r.targetAccuracy),
    pct(r.sourceAccuracy),
    r.kind === "frozen" ? "-" : duration(r.seconds),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const p = result.pretrain;
  return [
    `source: ${t.classes}-arm spiral in a plane of R^${t.dIn}; target: the same spiral in a plane tilted ${t.tiltDegrees} degrees`,
    `base MLP ${[t.dIn, ...DEMO_CONFIG.hidden, t.classes].join("-")} (${p.params} parameters), pretrained ${result.pretrainEpochs} epochs in ${duration(p.seconds)}: source ${pct(p.sourceAccuracy)}, target ${pct(p.targetAccuracy)}`,
    `adapted ${result.epochs} epochs each on the target task (seed ${result.seed})`,
    "",
    line(head),
    ...rows.map(line),
    "",
    `source acc is measured with the adapter active; disabling a LoRA adapter gives back the base exactly (${pct(p.sourceAccuracy)}).`,
    `wrote ${out}: LoRA r=${rank} adapter (adapter_config.json, adapter_model.safetensors), base_model.safetensors, loss.svg, results.json`,
  ].join("\n");
}

function jsonResult(result: DemoResult, rank: number, out: string): object {
  return {
    seed: result.seed,
    epochs: result.epochs,
    pretrainEpochs: result.pretrainEpochs,
    config: DEMO_CONFIG,
    pretrain: result.pretrain,
    rows: result.rows,
    adapter: { rank, alpha: DEMO_CONFIG.alphaPerRank * rank, out },
  };
}

/**
 * Makes the --out folder before the run (a minute or more), so that a path that could not be written at its end is
 * refused at once: an existing path that is not a folder, a level that cannot be created, a folder not writable, a
 * folder where one of the output files goes.
 * @throws {FileWriteError} "invalid_output", "not_writable"
 */
function prepareOutFolder(out: string): void {
  if (existsSync(out) && !statSync(out).isDirectory())
    throw new FileWriteError("invalid_output", `train: --out ${JSON.stringify(out)} is not a folder; nothing was run`, {
      out,
    });
  makeFolder(out, "train");
  try {
    accessSync(out, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileWriteError(
      "not_writable",
      `train: --out ${JSON.stringify(out)} is not writable (${code}); nothing was run`,
      {
        out,
      },
    );
  }
  for (const name of OUT_FILES) {
    const target = join(out, name);
    if (existsSync(target) && statSync(target).isDirectory())
      throw new FileWriteError(
        "invalid_output",
        `train: ${JSON.stringify(target)} is a folder where the output file ${name} goes; nothing was run`,
        { out, path: target },
      );
  }
}

/** Writes the five output files to dir, all or none: a failure leaves the folder as it was. */
async function writeOutputs(dir: string, result: DemoResult, rank: number, json: object): Promise<void> {
  const model = result.loraModels.get(rank)!;
  const adapter = savePeftAdapter(loraModules(model, DEMO_CONFIG.adapterName), {
    peft_type: "LORA",
    r: rank,
    lora_alpha: DEMO_CONFIG.alphaPerRank * rank,
    target_modules: result.base.linears.map((_, i) => String(2 * i)),
    lora_dropout: 0,
  });
  const series = [
    { label: `pretrain (source)`, values: result.pretrain.lossCurve },
    ...result.rows.filter((r) => r.kind !== "frozen").map((r) => ({ label: r.method, values: r.lossCurve })),
  ];
  const text = (s: string) => new TextEncoder().encode(s);
  const svg = lossCurveSvg(series, { title: `lorakit train: loss per epoch (seed ${result.seed})` });
  const data: Record<(typeof OUT_FILES)[number], Uint8Array> = {
    "adapter_model.safetensors": adapter.weights,
    "adapter_config.json": text(adapter.configJson),
    "base_model.safetensors": mlpToSafetensors(result.base),
    "loss.svg": text(svg),
    "results.json": text(`${JSON.stringify(json, null, 2)}\n`),
  };
  await writeFilesAtomic(
    dir,
    OUT_FILES.map((name) => ({ name, data: data[name] })),
    { op: "train" },
  );
}

/** A positive integer option value; the message names the flag and what was given ("0", "-1", "1.5", "abc"). */
function parsePositive(flag: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`${flag} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseOptions("train", argv, {
    seed: { type: "string" },
    epochs: { type: "string" },
    rank: { type: "string" },
    "lora-plus": { type: "string" },
    json: { type: "boolean" },
    out: { type: "string" },
    debug: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  const seed = parseCount("--seed", values.seed, 0);
  const epochs = parsePositive("--epochs", values.epochs, DEFAULT_EPOCHS);
  const rank = parsePositive("--rank", values.rank, DEFAULT_RANK);
  if (rank > 128) throw new UsageError(`--rank must be an integer from 1 to 128, got ${rank}`);
  const ratioText = values["lora-plus"];
  const loraPlusRatio = ratioText === undefined ? 1 : Number(ratioText);
  if (!(loraPlusRatio > 0) || !Number.isFinite(loraPlusRatio))
    throw new UsageError(`--lora-plus must be a positive number, got ${JSON.stringify(ratioText)}`);
  const out = values.out ?? DEFAULT_OUT;
  if (out === "") throw new UsageError('--out must name a folder, got ""');
  prepareOutFolder(out);
  const ranks = [1, 2, 4, 8];
  if (!ranks.includes(rank)) ranks.push(rank);
  const clock = () => performance.now();
  const result = runLoraDemo({
    seed,
    epochs,
    ranks,
    lowPrecisionRank: rank,
    loraPlusRatio,
    clock,
    onProgress: progressReporter(io, io.isTTY, clock),
  });
  const json = jsonResult(result, rank, out);
  await writeOutputs(out, result, rank, json);
  io.stdout(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${table(result, rank, out)}\n`);
  return 0;
}

export const trainCommand: Command = {
  summary: "pretrain a small MLP, adapt it with LoRA vs full fine-tuning, compare (the second main job)",
  help: HELP,
  run,
};

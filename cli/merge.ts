// `lorakit merge`: writes base + adapter as one merged safetensors file, tensor by tensor.

import { existsSync, readFileSync } from "node:fs";
import { ggufToAdapter, type SavedTensor } from "../src/index.js";
import {
  ggufHeads,
  loadAdapter,
  type MergeDtype,
  type MergeProgress,
  mergeAdapterIntoGguf,
  mergeAdapterIntoModel,
  openGguf,
} from "../src/node/index.js";
import { type CliIo, type Command, parseOptions, UsageError } from "./usage.js";

const HELP = `Usage: lorakit merge --base model.safetensors --adapter DIR --out merged.safetensors [--dtype f16|bf16|f32]

Adds each adapter module's scaling·down·up to its base weight (PEFT or MLX-LM adapter; fan_in_fan_out and DoRA
handled) and writes a new safetensors file. Reads and writes one tensor at a time; every module is checked against
the base before anything is written, and the output appears only when complete (temporary file + rename). A sharded
base (a folder with model.safetensors.index.json, or that file) gives a folder with the same shards and a new index.
--out may not be the base itself (or a link to it), a folder (for one file), a device or a FIFO.

A .gguf base (llama.cpp) is merged the same way into a new .gguf, each tensor kept in its type (Q8_0/Q4_0
re-quantized with ggml's reference rounding); the adapter may then also be a .gguf LoRA. See docs/gguf.md.

Options:
  --base PATH      base model: a .safetensors file, a model.safetensors.index.json, a folder with either, or a .gguf
  --adapter PATH   adapter folder (adapter_config.json + adapter_model.safetensors) or its .safetensors file
  --out PATH       output .safetensors (a folder for a sharded base)
  --dtype D        f32, f16 or bf16: cast every float tensor (default: keep each tensor's dtype)
  --quiet          no progress output
  --debug          print stack traces on errors
  --help           show this help

Exit codes: 0 ok, 1 unexpected failure, 2 usage or input error.`;

const DTYPES: readonly string[] = ["f32", "f16", "bf16"];
const BAR = 30;

function mib(n: number): string {
  if (n < 2 ** 20) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

/** A progress reporter: a redrawn bar on a terminal, a line per 10% otherwise. */
function reporter(io: CliIo): (p: MergeProgress) => void {
  let lastDecile = -1;
  return (p) => {
    const f = p.totalBytes > 0 ? p.bytesWritten / p.totalBytes : 1;
    if (io.isTTY) {
      const filled = Math.round(f * BAR);
      io.stderr(
        `\r[${"#".repeat(filled)}${".".repeat(BAR - filled)}] ${String(Math.round(100 * f)).padStart(3)}% ${p.done}/${p.total} tensors`,
      );
      if (p.done === p.total) io.stderr("\n");
      return;
    }
    const decile = Math.floor(f * 10);
    if (decile > lastDecile || p.done === p.total) {
      lastDecile = decile;
      io.stderr(`merge: ${p.done}/${p.total} tensors, ${mib(p.bytesWritten)} of ${mib(p.totalBytes)}\n`);
    }
  };
}

function requirePath(flag: string, v: string | undefined): string {
  if (v === undefined) throw new UsageError(`${flag} is required (see 'lorakit merge --help')`);
  if (!existsSync(v)) throw new UsageError(`${flag} ${v} does not exist`);
  return v;
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseOptions("merge", argv, {
    base: { type: "string" },
    adapter: { type: "string" },
    out: { type: "string" },
    dtype: { type: "string" },
    quiet: { type: "boolean" },
    debug: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  const base = requirePath("--base", values.base);
  const adapterPath = requirePath("--adapter", values.adapter);
  if (values.out === undefined) throw new UsageError("--out is required (see 'lorakit merge --help')");
  if (values.dtype !== undefined && !DTYPES.includes(values.dtype))
    throw new UsageError(`--dtype must be f32, f16 or bf16, got ${JSON.stringify(values.dtype)}`);
  if (base.endsWith(".gguf")) return mergeGguf(base, adapterPath, values.out, io);
  const adapter = await loadAdapter(adapterPath);
  for (const w of adapter.warnings) io.stderr(`lorakit merge: warning: ${w}\n`);
  const summary = await mergeAdapterIntoModel(base, adapter, {
    out: values.out,
    ...(values.dtype !== undefined ? { dtype: values.dtype as MergeDtype } : {}),
    ...(values.quiet ? {} : { onProgress: reporter(io) }),
    onWarning: (w) => io.stderr(`lorakit merge: ${w}\n`),
  });
  for (const w of summary.warnings) io.stderr(`lorakit merge: warning: ${w}\n`);
  const shards = summary.files.length > 1 ? ` (${summary.files.length - 1} shards + index)` : "";
  io.stdout(
    `wrote ${summary.out}${shards}: ${summary.tensors} tensors, ${summary.merged.size} merged${summary.replaced.length ? `, ${summary.replaced.length} replaced (modules_to_save)` : ""}, ${mib(summary.bytes)}${values.dtype ? ` (${values.dtype})` : ""}\n`,
  );
  return 0;
}

async function mergeGguf(base: string, adapterPath: string, out: string, io: CliIo): Promise<number> {
  let modules: Awaited<ReturnType<typeof loadAdapter>>["modules"];
  let modulesToSave: ReadonlyMap<string, SavedTensor> | undefined;
  if (adapterPath.endsWith(".gguf")) {
    const f = await openGguf(base);
    const arch = String(f.metadata.get("general.architecture")?.value);
    const heads = ggufHeads(f, arch);
    await f.close();
    modules = ggufToAdapter(new Uint8Array(readFileSync(adapterPath)), { heads }).modules;
  } else {
    const adapter = await loadAdapter(adapterPath);
    for (const w of adapter.warnings) io.stderr(`lorakit merge: warning: ${w}\n`);
    modules = adapter.modules;
    modulesToSave = adapter.format === "peft" ? adapter.modulesToSave : undefined;
  }
  const s = await mergeAdapterIntoGguf(base, { modules, modulesToSave }, { out });
  io.stdout(
    `wrote ${s.out}: ${s.tensors} tensors, ${s.merged.size} merged${s.replaced.length ? `, ${s.replaced.length} replaced (modules_to_save)` : ""}\n`,
  );
  return 0;
}

export const mergeCommand: Command = {
  summary: "merge a LoRA adapter into a base model's safetensors file",
  help: HELP,
  run,
};

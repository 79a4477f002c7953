// `lorakit inspect`: what is in an adapter folder or a .safetensors file, as a table or as JSON.

import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { MlxAdapter, PeftAdapter, PeftModuleAdapter } from "../src/index.js";
import { loadAdapter, openBaseModel, openGguf, openSafetensors } from "../src/node/index.js";
import { type CliIo, type Command, parseOptions, UsageError } from "./usage.js";

const HELP = `Usage: lorakit inspect <adapter-dir | file.safetensors | file.gguf> [--base model.safetensors] [--json]

Lists the modules of a LoRA adapter (PEFT, or MLX-LM) with their shapes, dtype, r, alpha, scaling and trainable
parameters. The adapter is its folder, its weights file or its adapter_config.json. A .safetensors file with no
adapter_config.json beside it is listed tensor by tensor; so is a .gguf file (a llama.cpp LoRA adapter or model),
with its general.* and adapter.* metadata and each tensor's ggml type and shape in ggml order (ne[0] first).

Options:
  --base PATH   base model (.safetensors, model.safetensors.index.json of a sharded model, or a folder with
                either): check each module against its base tensor and give the fraction of the base's
                parameters the adapter trains (reads the headers only)
  --json        print JSON instead of a table
  --debug       print stack traces on errors
  --help        show this help

Exit codes: 0 ok, 1 unexpected failure, 2 usage or input error.`;

interface ModuleRow {
  module: string;
  kind: string;
  dIn: number;
  dOut: number;
  r: number;
  alpha: number;
  scaling: number;
  dtype: string;
  params: number;
  down: number[];
  up: number[];
  magnitude?: number[];
  baseTensor?: string;
  baseStatus?: string;
}

function moduleRow(m: PeftModuleAdapter): ModuleRow {
  const dIn = m.down.rows;
  const dOut = m.up.cols;
  const row: ModuleRow = {
    module: m.modulePath,
    kind: m.kind,
    dIn,
    dOut,
    r: m.r,
    alpha: m.alpha,
    scaling: m.scaling,
    dtype: m.dtype,
    params: m.r * (dIn + dOut) + (m.magnitude?.length ?? 0),
    down: [dIn, m.r],
    up: [m.r, dOut],
  };
  if (m.magnitude) row.magnitude = [m.magnitude.length];
  return row;
}

/** Orders module names as people count: digit runs compare as numbers, so h.2 comes before h.10. */
export function naturalCompare(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    // odd indices are the digit runs of split's capture group
    if (i % 2 === 1) {
      const d = Number(x) - Number(y) || x.length - y.length;
      if (d !== 0) return d;
    }
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** Full tensors the adapter carries (they replace base tensors when merged), and why. */
interface SavedRow {
  name: string;
  dtype: string;
  shape: number[];
  what: string;
  /** Trained with the adapter (a module's bias, modules_to_save); a saved base weight is frozen, only carried. */
  trainable: boolean;
}

const ROLE_TEXT: Record<string, string> = {
  modules_to_save: "modules_to_save",
  bias: 'bias "all"',
  task_head: "task head saved by older PEFT (modules_to_save null)",
};

function savedRows(adapter: PeftAdapter | MlxAdapter): SavedRow[] {
  const rows: SavedRow[] = [];
  for (const m of adapter.modules) {
    if (m.bias)
      rows.push({
        name: `${m.modulePath}.bias`,
        dtype: m.dtype,
        shape: [m.bias.length],
        what: "the module's own bias",
        trainable: true,
      });
    if (m.baseWeight)
      rows.push({
        name: `${m.modulePath}.weight`,
        dtype: m.baseWeight.dtype,
        shape: m.baseWeight.shape,
        what: "the module's frozen base weight, saved by save_embedding_layers; not trainable",
        trainable: false,
      });
  }
  if (adapter.format === "peft")
    for (const [name, t] of adapter.modulesToSave)
      rows.push({
        name,
        dtype: t.dtype,
        shape: t.shape,
        what: ROLE_TEXT[t.role ?? ""] ?? "saved tensor",
        trainable: true,
      });
  return rows;
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((s, c) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function fmtNum(v: number): string {
  return Number.isInteger(v) ? String(v) : Number(v.toPrecision(6)).toString();
}

function pct(f: number): string {
  return `${(100 * f).toPrecision(3)}%`;
}

async function baseInfo(path: string, modules: ModuleRow[], fanInFanOut: Map<string, boolean>) {
  const f = await openBaseModel(path, "inspect --base");
  try {
    let params = 0;
    for (const t of f.tensors.values()) params += t.shape.reduce((a, b) => a * b, 1);
    for (const m of modules) {
      const names = [`${m.module}.weight`, `${m.module.slice(m.module.indexOf(".") + 1)}.weight`];
      const t = names.map((n) => f.tensors.get(n)).find((x) => x !== undefined);
      const transposed = m.kind === "linear" && !fanInFanOut.get(m.module);
      const want = transposed ? [m.dOut, m.dIn] : [m.dIn, m.dOut];
      if (!t) m.baseStatus = "missing";
      else {
        m.baseTensor = t.name;
        // a fan_in_fan_out-false module stored [dIn, dOut] ≠ [dOut, dIn] is a Conv1D layer: merged as one (as PEFT)
        const conv1d = transposed && m.dIn !== m.dOut && t.shape.join(",") === [m.dIn, m.dOut].join(",");
        m.baseStatus =
          t.shape.join(",") === want.join(",")
            ? "ok"
            : conv1d
              ? "ok (Conv1D: merged as fan_in_fan_out)"
              : `mismatch: shape [${t.shape.join(", ")}], expected [${want.join(", ")}]`;
      }
    }
    return { path, params, tensors: f.tensors.size, shards: f.isSharded ? f.shards.length : 1 };
  } finally {
    await f.close();
  }
}

async function inspectRawFile(path: string, json: boolean, io: CliIo): Promise<number> {
  const f = await openSafetensors(path);
  try {
    const rows = [...f.header.tensors.values()].map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      params: t.shape.reduce((a, b) => a * b, 1),
    }));
    const total = rows.reduce((a, r) => a + r.params, 0);
    if (json) {
      io.stdout(`${JSON.stringify({ path, metadata: f.header.metadata, tensors: rows, params: total }, null, 2)}\n`);
      return 0;
    }
    io.stdout(`${path}: ${rows.length} tensors, ${total} parameters (no adapter_config.json beside it)\n\n`);
    io.stdout(
      `${table(
        ["tensor", "dtype", "shape", "params"],
        rows.map((r) => [r.name, r.dtype, `[${r.shape.join(", ")}]`, String(r.params)]),
      )}\n`,
    );
    return 0;
  } finally {
    await f.close();
  }
}

// A u64 / i64 metadata value (a bigint, which JSON.stringify refuses) as a number when that is exact, else as its
// decimal string.
function printable(v: number | bigint | boolean | string): number | boolean | string {
  if (typeof v !== "bigint") return v;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/** A .gguf file (LoRA adapter or model): its general.* / adapter.* metadata and its tensors, from the header only. */
async function inspectGgufFile(path: string, json: boolean, io: CliIo): Promise<number> {
  const f = await openGguf(path);
  try {
    // shapes in ggml order (ne[0] = row length), as llama.cpp prints them
    const rows = f.tensors.map((t) => ({
      name: t.name,
      type: t.type.name,
      shape: t.shape,
      params: t.shape.reduce((a, b) => a * b, 1),
    }));
    const total = rows.reduce((a, r) => a + r.params, 0);
    const meta: Record<string, unknown> = {};
    for (const [k, v] of f.metadata) {
      if (!k.startsWith("general.") && !k.startsWith("adapter.")) continue;
      meta[k] = Array.isArray(v.value) ? v.value.map(printable) : printable(v.value);
    }
    if (json) {
      io.stdout(
        `${JSON.stringify({ path, version: f.version, metadata: meta, tensors: rows, params: total }, null, 2)}\n`,
      );
      return 0;
    }
    io.stdout(`${path}: GGUF v${f.version}, ${rows.length} tensors, ${total} parameters\n`);
    for (const [k, v] of Object.entries(meta)) io.stdout(`${k} = ${JSON.stringify(v)}\n`);
    io.stdout(
      `\n${table(
        ["tensor", "type", "shape (ggml order)", "params"],
        rows.map((r) => [r.name, r.type, `[${r.shape.join(", ")}]`, String(r.params)]),
      )}\n`,
    );
    return 0;
  } finally {
    await f.close();
  }
}

function configSummary(a: PeftAdapter | MlxAdapter): Record<string, unknown> {
  if (a.format === "mlx") return { lora_parameters: a.config.lora_parameters, model: a.config.model ?? null };
  const c = a.config;
  return {
    r: c.r,
    lora_alpha: c.loraAlpha,
    use_rslora: c.useRslora,
    use_dora: c.useDora,
    fan_in_fan_out: c.fanInFanOut,
    target_modules: c.targetModules,
    base_model_name_or_path: c.baseModelNameOrPath,
  };
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseOptions(
    "inspect",
    argv,
    {
      base: { type: "string" },
      json: { type: "boolean" },
      debug: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    true,
  );
  if (values.help) {
    io.stdout(`${HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1)
    throw new UsageError(
      `expected one adapter folder, .safetensors or .gguf file, got ${positionals.length} (see 'lorakit inspect --help')`,
    );
  const path = positionals[0]!;
  if (!existsSync(path)) throw new UsageError(`${path} does not exist`);
  if (values.base !== undefined && !existsSync(values.base))
    throw new UsageError(`--base ${values.base} does not exist`);
  const isFile = statSync(path).isFile();
  if (isFile && path.endsWith(".gguf")) return inspectGgufFile(path, values.json === true, io);
  if (isFile && path.endsWith(".safetensors") && !existsSync(join(dirname(path), "adapter_config.json")))
    return inspectRawFile(path, values.json === true, io);
  const adapter = await loadAdapter(path);
  const rows = adapter.modules.map(moduleRow).sort((a, b) => naturalCompare(a.module, b.module));
  const saved = adapter.format === "peft" ? [...adapter.modulesToSave] : [];
  const full = savedRows(adapter);
  const trainable =
    rows.reduce((a, r) => a + r.params, 0) +
    full.filter((t) => t.trainable).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
  const fif = new Map(adapter.modules.map((m) => [m.modulePath, m.fanInFanOut]));
  const base = values.base === undefined ? undefined : await baseInfo(values.base, rows, fif);
  if (values.json) {
    const doc = {
      path,
      format: adapter.format,
      config: configSummary(adapter),
      modules: rows,
      modulesToSave: saved.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
      savedTensors: full,
      trainableParams: trainable,
      base: base && { ...base, fraction: trainable / base.params },
      warnings: adapter.warnings,
    };
    io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
    return 0;
  }
  const cfg = configSummary(adapter);
  io.stdout(`${path}: ${adapter.format === "peft" ? "PEFT LoRA" : "MLX-LM LoRA"} adapter, ${rows.length} modules\n`);
  io.stdout(
    `config: ${Object.entries(cfg)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(" ")}\n\n`,
  );
  const headers = ["module", "down", "up", "dtype", "r", "alpha", "scaling", "params"];
  if (base) headers.push("base tensor");
  const cells = rows.map((r) => {
    const c = [
      r.module,
      `[${r.down.join(", ")}]`,
      `[${r.up.join(", ")}]`,
      r.dtype,
      String(r.r),
      fmtNum(r.alpha),
      fmtNum(r.scaling),
      String(r.params),
    ];
    if (base) c.push(r.baseStatus === "ok" ? r.baseTensor! : `${r.baseTensor ?? ""} ${r.baseStatus}`.trim());
    return c;
  });
  io.stdout(`${table(headers, cells)}\n\n`);
  for (const t of full) io.stdout(`saved full tensor: ${t.name} ${t.dtype} [${t.shape.join(", ")}] (${t.what})\n`);
  io.stdout(`trainable parameters: ${trainable}`);
  if (base)
    io.stdout(
      ` (${pct(trainable / base.params)} of ${base.params} in ${base.path}${base.shards > 1 ? `, ${base.shards} shards` : ""})`,
    );
  io.stdout("\n");
  for (const w of adapter.warnings) io.stderr(`lorakit inspect: warning: ${w}\n`);
  return 0;
}

export const inspectCommand: Command = {
  summary: "list an adapter's modules, shapes, r, alpha, scaling and parameter counts",
  help: HELP,
  run,
};

// Merges an adapter into a GGUF base model (what llama.cpp's export-lora does), one tensor at a time, atomically.
// GGUF weights are stored row-major [dOut, dIn] (ne [dIn, dOut]) like nn.Linear, token_embd [vocab, dim]; llama's
// q/k rows are permuted per head, so they are unpermuted, merged (src/node/merge-tensor.ts, DoRA included) and
// permuted back. A quantized tensor (Q8_0, Q4_0) is dequantized, merged and re-quantized with ggml's reference
// rounding; F16/BF16 are rounded to nearest even. Every module is checked before anything is written.

import { AdapterFormatError, ArgumentError, GgufError, ShapeError } from "../errors.js";
import { invalidArgument, requireAdapter, requireObject } from "../io/format-args.js";
import { decodeGgmlTensor, encodeGgmlTensor } from "../io/ggml-quant.js";
import { ggufElements } from "../io/gguf.js";
import {
  type AttentionHeads,
  type GgufArchitecture,
  ggufNameOf,
  permutedHeads,
  permuteHeadRows,
  requireArchitecture,
} from "../io/gguf-names.js";
import { GGML_CODED_TYPES, type GgmlCodedType, type GgufTensorInfo } from "../io/gguf-types.js";
import type { PeftModuleAdapter, SavedTensor } from "../io/peft-adapter.js";
import { type GgufFile, type GgufTensorSource, openGguf, writeGgufFile } from "./gguf-file.js";
import { mergeModuleInto } from "./merge-tensor.js";
import { requirePath } from "./path-arg.js";

const OP = "mergeAdapterIntoGguf";

/** What mergeAdapterIntoGguf did. */
export interface GgufMergeSummary {
  out: string;
  tensors: number;
  /** Module path → GGUF tensor it was merged into. */
  merged: Map<string, string>;
  /** GGUF tensors replaced by modules_to_save copies. */
  replaced: string[];
}

/** The attention head counts a GGUF base records (for the q/k permutation). */
export function ggufHeads(f: { metadata: GgufFile["metadata"] }, arch: string): AttentionHeads | undefined {
  if (!((f as { metadata?: unknown } | null)?.metadata instanceof Map))
    throw invalidArgument("ggufHeads", "f", f, "an open GGUF file or header { metadata: Map }");
  if (typeof arch !== "string") throw invalidArgument("ggufHeads", "arch", arch, "an architecture name (a string)");
  const h = f.metadata.get(`${arch}.attention.head_count`)?.value;
  const kv = f.metadata.get(`${arch}.attention.head_count_kv`)?.value ?? h;
  return typeof h === "number" && typeof kv === "number" ? { nHead: h, nHeadKv: kv } : undefined;
}

interface Job {
  info: GgufTensorInfo;
  /** Rows per head of the q/k permutation, or null. */
  nHead: number | null;
  module?: PeftModuleAdapter;
  replacement?: SavedTensor;
}

function plan(
  f: GgufFile,
  arch: GgufArchitecture,
  modules: readonly PeftModuleAdapter[],
  mts: ReadonlyMap<string, SavedTensor>,
) {
  const heads = ggufHeads(f, arch);
  const jobs = new Map<string, Job>();
  const missing: string[] = [];
  const byName = new Map(f.tensors.map((t) => [t.name, t]));
  const find = (what: string, module: string, suffix: string): GgufTensorInfo | undefined => {
    const base = ggufNameOf(arch, module);
    const t = base === null ? undefined : byName.get(`${base}.${suffix}`);
    if (t === undefined)
      missing.push(`${what} "${module}" (GGUF ${base === null ? "has no name for it" : `${base}.${suffix}`})`);
    return t;
  };
  for (const m of modules) {
    const info = find("module", m.modulePath, "weight");
    if (info === undefined) continue;
    const dIn = m.down.rows;
    const dOut = m.up.cols;
    // linear: ne [dIn, dOut]; token_embd: ne [dim, vocab] = [dOut, dIn]
    const want = m.kind === "embedding" ? [dOut, dIn] : [dIn, dOut];
    if (info.shape.join() !== want.join())
      throw new ShapeError(
        "shape_mismatch",
        `${OP}: ${info.name} has ne [${info.shape.join(", ")}], expected [${want.join(", ")}] for module "${m.modulePath}" (dIn = ${dIn}, dOut = ${dOut}; nothing was written)`,
        { name: info.name, shape: info.shape, expected: want },
      );
    const nHead = m.kind === "embedding" ? null : permutedHeads(arch, info.name.replace(/\.weight$/, ""), heads, OP);
    jobs.set(info.name, { info, nHead, module: m });
    // a trained bias (bias "lora_only" / "all") replaces the base bias
    if (m.bias !== undefined) {
      const b = find("trained bias of module", m.modulePath, "bias");
      if (b !== undefined)
        jobs.set(b.name, { info: b, nHead, replacement: { dtype: "F32", shape: [m.bias.length], data: m.bias } });
    }
  }
  for (const [key, t] of mts) {
    const m = /^(.+)\.(weight|bias)$/.exec(key);
    const info = m ? find("modules_to_save tensor", m[1]!, m[2]!) : undefined;
    if (info === undefined) continue;
    if (info.shape.join() !== [...t.shape].reverse().join())
      throw new ShapeError(
        "shape_mismatch",
        `${OP}: ${info.name} has ne [${info.shape.join(", ")}], but "${key}" is [${t.shape.join(", ")}]`,
        {
          name: info.name,
        },
      );
    jobs.set(info.name, {
      info,
      nHead: permutedHeads(arch, info.name.replace(/\.(weight|bias)$/, ""), heads, OP),
      replacement: t,
    });
  }
  if (missing.length > 0)
    throw new AdapterFormatError(
      "missing_tensor",
      `${OP}: ${missing.length} adapter module(s) have no tensor in the GGUF base: ${missing.slice(0, 4).join("; ")} (nothing was written)`,
      { missing },
    );
  for (const j of jobs.values())
    if (!GGML_CODED_TYPES.includes(j.info.type.name as GgmlCodedType))
      throw new GgufError(
        "unsupported_dtype",
        `${OP}: ${j.info.name} is ${j.info.type.name}; lorakit merges into F32, F16, BF16, Q8_0 and Q4_0 tensors only`,
        {
          name: j.info.name,
        },
      );
  return jobs;
}

// row-major [rows, cols] → [cols, rows]
function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let k = 0; k < cols; k++) out[k * rows + i] = x[i * cols + k]!;
  return out;
}

function mergedData(j: Job, raw: Uint8Array): Uint8Array {
  const n = ggufElements(j.info);
  const cols = j.info.shape[0]!;
  const rows = n / cols;
  let w: Float32Array;
  if (j.replacement) w = j.replacement.data.slice();
  else {
    const m = j.module!;
    if (m.baseWeight !== undefined) {
      // the module's own base weight, in its stored layout: Conv1D [dIn, dOut] → GGUF [dOut, dIn]
      w = m.fanInFanOut && m.kind === "linear" ? transpose(m.baseWeight.data, cols, rows) : m.baseWeight.data.slice();
    } else {
      w = decodeGgmlTensor(j.info.type, raw, n, OP, j.info.name);
      if (j.nHead !== null) w = permuteHeadRows(w, rows, cols, j.nHead, true);
    }
    // linear: stored [dOut, dIn] (transposed); token_embd: [vocab, dim] = [dIn, dOut]
    const t = j.info.type.name;
    mergeModuleInto(w, m, m.kind !== "embedding", t === "F16" || t === "BF16" ? t : "F32");
    for (let i = 0; i < w.length; i++)
      if (!Number.isFinite(w[i]!))
        throw new ArgumentError(
          "non_finite",
          `${OP}: merged ${j.info.name} has a non-finite value at ${i}; the output was not written`,
          {
            name: j.info.name,
          },
        );
  }
  if (j.nHead !== null) w = permuteHeadRows(w, rows, cols, j.nHead);
  return encodeGgmlTensor(j.info.type.name as GgmlCodedType, w);
}

/**
 * Merges a PEFT / MLX adapter (or the modules of a GGUF LoRA) into a GGUF base model and writes a new GGUF file
 * with the same metadata, tensor order and types.
 * @throws {AdapterFormatError} "missing_tensor"   @throws {ShapeError} "shape_mismatch" (both before writing)
 * @throws {GgufError} "unsupported_architecture", "unsupported_dtype"   @throws {ArgumentError} "non_finite"
 */
export async function mergeAdapterIntoGguf(
  basePath: string,
  adapter: { modules: readonly PeftModuleAdapter[]; modulesToSave?: ReadonlyMap<string, SavedTensor> },
  options: { out: string },
): Promise<GgufMergeSummary> {
  requirePath(OP, "basePath", basePath);
  requireAdapter(OP, adapter);
  if (adapter.modulesToSave !== undefined && !(adapter.modulesToSave instanceof Map))
    throw invalidArgument(OP, "adapter.modulesToSave", adapter.modulesToSave, "a Map (a PEFT adapter's full tensors)");
  requirePath(OP, "options.out", requireObject(OP, "options", options, "{ out }").out);
  const f = await openGguf(basePath);
  try {
    const archValue = f.metadata.get("general.architecture")?.value;
    const arch = requireArchitecture(String(archValue), OP);
    const jobs = plan(f, arch, adapter.modules, adapter.modulesToSave ?? new Map());
    const tensors: GgufTensorSource[] = f.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      type: t.type,
      data: async () => {
        const j = jobs.get(t.name);
        if (j === undefined) return f.read(t.name);
        return mergedData(j, j.replacement ? new Uint8Array(0) : await f.read(t.name));
      },
    }));
    await writeGgufFile(options.out, f.metadata, tensors);
    const merged = new Map<string, string>();
    const replaced: string[] = [];
    for (const [name, j] of jobs) {
      if (j.module) merged.set(j.module.modulePath, name);
      else replaced.push(name);
    }
    return { out: options.out, tensors: f.tensors.length, merged, replaced };
  } finally {
    await f.close();
  }
}

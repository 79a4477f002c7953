// Merges a LoRA adapter into a base model (one safetensors file, or a sharded checkpoint), writing the output tensor
// by tensor: read one base tensor, add scaling·down·up in its stored layout (merge-tensor.ts), encode to the output
// dtype, write. Peak memory is about one tensor (plus the adapter). The output path (merge-output.ts), every module's
// base tensor and shape, and the free space are checked before anything is written; the output is streamed to a
// temporary file (or folder, for shards) that is renamed into place only when complete (atomic-write.ts).

import { dirname, resolve } from "node:path";
import { ArgumentError } from "../errors.js";
import { requireAdapter, requireObject } from "../io/format-args.js";
import {
  encodeTensorData,
  type SafetensorsDtype,
  type SafetensorsLayout,
  serializeSafetensorsHeader,
  type TensorInfo,
} from "../io/safetensors.js";
import { SAFETENSORS_INDEX_NAME, serializeSafetensorsIndex } from "../io/safetensors-index.js";
import { type OpenFile, removeStaleTemporaries, writeFileAtomic, writeFolderAtomic } from "./atomic-write.js";
import { type BaseShard, openBaseModel } from "./base-model.js";
import { readBaseArchitecture } from "./conv1d.js";
import { checkFreeSpace, checkMergeOutput } from "./merge-output.js";
import { type MergeableAdapter, type MergePlan, planMerge } from "./merge-plan.js";
import { mergeModuleInto } from "./merge-tensor.js";
import { requirePath } from "./path-arg.js";

/** Output dtype of merged (and, when given, all other float) tensors. */
export type MergeDtype = "f32" | "f16" | "bf16";
const DTYPE_OF: Record<MergeDtype, SafetensorsDtype> = { f32: "F32", f16: "F16", bf16: "BF16" };
const FLOAT_DTYPES = new Set<string>(["F32", "F16", "BF16", "F64"]);

/** Progress after each tensor written. */
export interface MergeProgress {
  /** Tensors written so far (1-based count) and in total. */
  done: number;
  total: number;
  name: string;
  /** "merged" (LoRA added), "replaced" (modules_to_save), "copied" (raw bytes) or "cast" (dtype changed). */
  action: "merged" | "replaced" | "copied" | "cast";
  bytesWritten: number;
  totalBytes: number;
}

/** Options of mergeAdapterIntoModel. */
export interface MergeOptions {
  /**
   * Output file path (written through a temporary file in the same folder, then renamed). For a sharded base, a
   * folder: the same shard files and a new model.safetensors.index.json are written into it.
   */
  out: string;
  /** Cast every float tensor to this dtype on write (computation is float32). Default: keep each tensor's dtype. */
  dtype?: MergeDtype;
  /** Called after each tensor is written. */
  onProgress?: (p: MergeProgress) => void;
  /** Told what was cleaned up before writing (stale temporaries of killed merges in the output's folder). */
  onWarning?: (message: string) => void;
  /** Opens each output file (default fs.promises.open): a seam for tests to inject write errors. */
  openFile?: OpenFile;
}

/** What mergeAdapterIntoModel did. */
export interface MergeSummary {
  out: string;
  tensors: number;
  /** Module path → base tensor name it was merged into. */
  merged: Map<string, string>;
  /** modules_to_save tensors that replaced base tensors. */
  replaced: string[];
  /** What the merge decided on its own (e.g. Conv1D modules merged as fan_in_fan_out). */
  warnings: string[];
  /** Files written: the output file, or for a sharded base each shard and the index (names inside out). */
  files: string[];
  /** Stale temporaries removed (or replaced folders restored) before writing, one sentence each. */
  cleaned: string[];
  bytes: number;
  /** Largest tensor held in memory as float32, in bytes. */
  peakTensorBytes: number;
}

export type { MergeableAdapter } from "./merge-plan.js";

const OP = "mergeAdapterIntoModel";

// As PEFT's safe_merge: a merged weight with NaN or ±Inf aborts the merge (the temporary file is removed).
function requireFiniteMerge(name: string, module: string, data: Float32Array, shape: readonly number[]): void {
  let bad = 0;
  let first = -1;
  for (let k = 0; k < data.length; k++) {
    if (!Number.isFinite(data[k]!)) {
      bad++;
      if (first < 0) first = k;
    }
  }
  if (bad === 0) return;
  const cols = shape[1] ?? 1;
  throw new ArgumentError(
    "non_finite",
    `${OP}: merged weight "${name}" has ${bad} non-finite values (first at [${Math.floor(first / cols)}, ${first % cols}]); the adapter for module "${module}" seems broken and no output was written`,
    { name, module, count: bad, first },
  );
}

function firstNonFinite(data: Float32Array): { count: number; first: number } {
  let count = 0;
  let first = -1;
  for (let k = 0; k < data.length; k++) {
    if (!Number.isFinite(data[k]!)) {
      count++;
      if (first < 0) first = k;
    }
  }
  return { count, first };
}

// A merge into a base weight that already holds NaN or ±Inf would be blamed on the adapter: name the base instead.
function requireFiniteBase(name: string, basePath: string, data: Float32Array, shape: readonly number[]): void {
  const { count, first } = firstNonFinite(data);
  if (count === 0) return;
  const cols = shape[1] ?? 1;
  throw new ArgumentError(
    "non_finite",
    `${OP}: base tensor "${name}" in ${basePath} has ${count} non-finite values (first at [${Math.floor(first / cols)}, ${first % cols}]) before the adapter is added: the base model is broken; no output was written`,
    { name, base: basePath, count, first },
  );
}

const INF_BITS: Partial<Record<SafetensorsDtype, number>> = { F16: 0x7c00, BF16: 0x7f80 }; // exponent all ones

// F16 holds at most 65504 and BF16 about 3.39e38: a finite value beyond rounds to ±Inf when cast. Refuse that.
function requireFiniteCast(name: string, dtype: SafetensorsDtype, data: Float32Array, bytes: Uint8Array): void {
  const mask = INF_BITS[dtype];
  if (mask === undefined) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = 0;
  let first = -1;
  for (let k = 0; k < data.length; k++) {
    if ((view.getUint16(2 * k, true) & mask) === mask && Number.isFinite(data[k]!)) {
      count++;
      if (first < 0) first = k;
    }
  }
  if (count === 0) return;
  throw new ArgumentError(
    "cast_overflow",
    `${OP}: tensor "${name}" has ${count} values beyond the ${dtype} range (first: ${data[first]} at index ${first}), which would be written as ±Inf; keep a wider dtype (--dtype f32 or bf16); no output was written`,
    { name, dtype, count, first, value: data[first] },
  );
}

/** One output file's layout: which base shard it copies and the header it gets. */
interface OutputFile {
  shard: BaseShard;
  layout: SafetensorsLayout;
}

/** The bytes of one output file, tensor by tensor: merged, replaced, cast or copied. */
async function* fileChunks(
  file: OutputFile,
  plan: MergePlan,
  progress: { done: number; total: number; written: number; totalBytes: number; peak: number },
  options: MergeOptions,
): AsyncGenerator<Uint8Array> {
  const { shard, layout } = file;
  progress.written += layout.header.length;
  yield layout.header;
  for (const spec of layout.tensors) {
    const src = shard.file.info(spec.name);
    const m = plan.modules.get(spec.name);
    const saved = plan.replaced.get(spec.name);
    let bytes: Uint8Array;
    let action: MergeProgress["action"];
    if (m !== undefined || saved !== undefined || spec.dtype !== src.dtype) {
      const isFromBase = saved === undefined && m?.baseWeight === undefined;
      const data = isFromBase ? await shard.file.readFloat32(spec.name) : (saved?.data ?? m!.baseWeight!.data.slice());
      if (m !== undefined) {
        if (isFromBase) requireFiniteBase(spec.name, shard.file.path, data, src.shape);
        mergeModuleInto(data, m.module, m.transposed, src.dtype);
        requireFiniteMerge(spec.name, m.module.modulePath, data, spec.shape);
      }
      progress.peak = Math.max(progress.peak, data.byteLength);
      bytes = encodeTensorData({ dtype: spec.dtype, shape: spec.shape, data }, spec.name, OP);
      requireFiniteCast(spec.name, spec.dtype, data, bytes);
      action = m !== undefined ? "merged" : saved !== undefined ? "replaced" : "cast";
    } else {
      bytes = await shard.file.read(spec.name);
      action = "copied";
    }
    yield bytes;
    progress.written += bytes.length;
    progress.done++;
    options.onProgress?.({
      done: progress.done,
      total: progress.total,
      name: spec.name,
      action,
      bytesWritten: progress.written,
      totalBytes: progress.totalBytes,
    });
  }
}

/**
 * Merges an adapter into a base safetensors model and writes the merged model to options.out.
 * Each targeted weight becomes W + scaling·down·up (DoRA: rescaled per output feature), computed in float32 and
 * written in the base tensor's dtype or options.dtype; other tensors are copied (or cast when dtype is given).
 * A sharded base (a folder or its model.safetensors.index.json) gives a folder with the same shards and a new index.
 * @param basePath the base model: a .safetensors file, a model.safetensors.index.json, or a folder with either
 * @param adapter from loadPeftAdapter / loadMlxAdapter
 * @throws {FileWriteError} "invalid_output", "output_is_input", "not_writable", "no_space" (before writing where
 *   the file system allows; the temporary output is removed)
 * @throws {AdapterFormatError} "missing_tensor" when a module has no base tensor (before writing anything)
 * @throws {ShapeError} "shape_mismatch" when a base tensor has the wrong shape (before writing anything)
 * @throws {ArgumentError} "non_finite" when a base or merged weight has NaN or ±Inf, "cast_overflow" when a value
 *   exceeds the output dtype's range (the output is not written)
 * @example await mergeAdapterIntoModel("model.safetensors", adapter, { out: "merged.safetensors", dtype: "f16" })
 */
export async function mergeAdapterIntoModel(
  basePath: string,
  adapter: MergeableAdapter,
  options: MergeOptions,
): Promise<MergeSummary> {
  requireAdapter(OP, adapter);
  // a string out ("" included) is checkMergeOutput's to judge (invalid_output, output_is_input, …)
  const out = requireObject(OP, "options", options, "{ out, dtype? }").out;
  if (typeof out !== "string") requirePath(OP, "options.out", out);
  if (options.dtype !== undefined && !(options.dtype in DTYPE_OF))
    throw new ArgumentError(
      "invalid_argument",
      `${OP}: options.dtype is ${JSON.stringify(options.dtype)}, expected "f32", "f16" or "bf16"`,
      { dtype: options.dtype },
    );
  const base = await openBaseModel(basePath, OP);
  try {
    await checkMergeOutput(OP, options.out, base.inputs, base.isSharded ? "folder" : "file");
    const plan = planMerge(OP, base.tensors, adapter, await readBaseArchitecture(base.file));
    const outDtype = (t: TensorInfo): SafetensorsDtype =>
      options.dtype !== undefined && FLOAT_DTYPES.has(t.dtype) ? DTYPE_OF[options.dtype] : t.dtype;
    const files: OutputFile[] = base.shards.map((shard) => ({
      shard,
      layout: serializeSafetensorsHeader(
        [...shard.file.header.tensors.values()].map(
          (t) => [t.name, { dtype: outDtype(t), shape: plan.shapes.get(t.name) ?? t.shape }] as const,
        ),
        shard.file.header.metadata ?? undefined,
      ),
    }));
    const weightMap = new Map<string, string>();
    let dataBytes = 0;
    for (const f of files) {
      for (const t of f.layout.tensors) weightMap.set(t.name, f.shard.name);
      dataBytes += f.layout.totalLength - f.layout.dataStart;
    }
    const index = base.isSharded ? serializeSafetensorsIndex(weightMap, dataBytes, base.indexMetadata) : undefined;
    const totalBytes = files.reduce((a, f) => a + f.layout.totalLength, 0);
    await checkFreeSpace(OP, options.out, totalBytes + (index?.length ?? 0));
    const cleaned = await removeStaleTemporaries(dirname(resolve(options.out)));
    for (const c of cleaned) options.onWarning?.(c);
    const progress = { done: 0, total: weightMap.size, written: 0, totalBytes, peak: 0 };
    const write = { op: OP, ...(options.openFile ? { openFile: options.openFile } : {}) };
    if (index === undefined) {
      await writeFileAtomic(options.out, fileChunks(files[0]!, plan, progress, options), write);
    } else {
      const shards = files.map((f) => ({ name: f.shard.name, data: fileChunks(f, plan, progress, options) }));
      await writeFolderAtomic(options.out, [...shards, { name: SAFETENSORS_INDEX_NAME, data: index }], write);
    }
    const merged = new Map([...plan.modules].map(([name, p]) => [p.module.modulePath, name]));
    return {
      out: options.out,
      tensors: weightMap.size,
      merged,
      replaced: [...plan.replaced.keys()],
      warnings: plan.warnings,
      files: index === undefined ? [options.out] : [...files.map((f) => f.shard.name), SAFETENSORS_INDEX_NAME],
      cleaned,
      bytes: progress.written + (index?.length ?? 0),
      peakTensorBytes: progress.peak,
    };
  } finally {
    await base.close();
  }
}

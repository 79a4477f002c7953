// Merges a LoRA adapter into a base model's safetensors file, writing a new file tensor by tensor:
// read one base tensor, add scaling·down·up in its stored layout (merge-tensor.ts), encode to the output dtype,
// write. Peak memory is about one tensor (plus the adapter). Every module is matched to a base tensor and every
// shape checked before anything is written; writeFileAtomic streams the output to a temporary file and renames it.

import { ArgumentError } from "../errors.js";
import {
  encodeTensorData,
  type SafetensorsDtype,
  serializeSafetensorsHeader,
  type TensorInfo,
} from "../io/safetensors.js";
import { readBaseArchitecture } from "./conv1d.js";
import { type MergeableAdapter, planMerge } from "./merge-plan.js";
import { mergeModuleInto } from "./merge-tensor.js";
import { openSafetensors, writeFileAtomic } from "./safetensors-file.js";

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
  /** Output file path (written through a temporary file in the same folder, then renamed). */
  out: string;
  /** Cast every float tensor to this dtype on write (computation is float32). Default: keep each tensor's dtype. */
  dtype?: MergeDtype;
  /** Called after each tensor is written. */
  onProgress?: (p: MergeProgress) => void;
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

/**
 * Merges an adapter into a base safetensors model and writes the merged model to options.out.
 * Each targeted weight becomes W + scaling·down·up (DoRA: rescaled per output feature), computed in float32 and
 * written in the base tensor's dtype or options.dtype; other tensors are copied (or cast when dtype is given).
 * @param basePath the base model .safetensors file   @param adapter from loadPeftAdapter / loadMlxAdapter
 * @throws {AdapterFormatError} "missing_tensor" when a module has no base tensor (before writing anything)
 * @throws {ShapeError} "shape_mismatch" when a base tensor has the wrong shape (before writing anything)
 * @throws {ArgumentError} "non_finite" when a merged weight has NaN or ±Inf (the output is not written)
 * @example await mergeAdapterIntoModel("model.safetensors", adapter, { out: "merged.safetensors", dtype: "f16" })
 */
export async function mergeAdapterIntoModel(
  basePath: string,
  adapter: MergeableAdapter,
  options: MergeOptions,
): Promise<MergeSummary> {
  if (options.dtype !== undefined && !(options.dtype in DTYPE_OF))
    throw new ArgumentError(
      "invalid_argument",
      `${OP}: options.dtype is ${JSON.stringify(options.dtype)}, expected "f32", "f16" or "bf16"`,
      { dtype: options.dtype },
    );
  const base = await openSafetensors(basePath);
  try {
    const tensors = base.header.tensors;
    const plan = planMerge(OP, tensors, adapter, await readBaseArchitecture(basePath));
    const outDtype = (t: TensorInfo): SafetensorsDtype =>
      options.dtype !== undefined && FLOAT_DTYPES.has(t.dtype) ? DTYPE_OF[options.dtype] : t.dtype;
    const layout = serializeSafetensorsHeader(
      [...tensors.values()].map(
        (t) => [t.name, { dtype: outDtype(t), shape: plan.shapes.get(t.name) ?? t.shape }] as const,
      ),
      base.header.metadata ?? undefined,
    );
    let written = 0;
    let peak = 0;
    let done = 0;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      written = layout.header.length;
      yield layout.header;
      for (const spec of layout.tensors) {
        const src = tensors.get(spec.name)!;
        const m = plan.modules.get(spec.name);
        const saved = plan.replaced.get(spec.name);
        let bytes: Uint8Array;
        let action: MergeProgress["action"];
        if (m !== undefined || saved !== undefined || spec.dtype !== src.dtype) {
          const data =
            saved !== undefined
              ? saved.data
              : m?.baseWeight !== undefined
                ? m.baseWeight.data.slice()
                : await base.readFloat32(spec.name);
          if (m !== undefined) {
            mergeModuleInto(data, m.module, m.transposed, src.dtype);
            requireFiniteMerge(spec.name, m.module.modulePath, data, spec.shape);
          }
          peak = Math.max(peak, data.byteLength);
          bytes = encodeTensorData({ dtype: spec.dtype, shape: spec.shape, data }, spec.name, OP);
          action = m !== undefined ? "merged" : saved !== undefined ? "replaced" : "cast";
        } else {
          bytes = await base.read(spec.name);
          action = "copied";
        }
        yield bytes;
        written += bytes.length;
        done++;
        options.onProgress?.({
          done,
          total: layout.tensors.length,
          name: spec.name,
          action,
          bytesWritten: written,
          totalBytes: layout.totalLength,
        });
      }
    }
    await writeFileAtomic(options.out, chunks());
    const merged = new Map([...plan.modules].map(([name, p]) => [p.module.modulePath, name]));
    return {
      out: options.out,
      tensors: layout.tensors.length,
      merged,
      replaced: [...plan.replaced.keys()],
      warnings: plan.warnings,
      bytes: written,
      peakTensorBytes: peak,
    };
  } finally {
    await base.close();
  }
}

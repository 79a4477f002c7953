// Merge planning: which base tensor each adapter module goes into, in which stored layout, and which base tensors
// an adapter's saved full tensors replace. Everything is matched and every shape checked here, before the merge
// writes a byte. Layout of a linear module's base weight: [dOut, dIn] (nn.Linear) or [dIn, dOut] (Conv1D,
// fan_in_fan_out). A module whose config says fan_in_fan_out false is still read as Conv1D, as PEFT switches it
// (peft/tuners/lora/model.py _create_new_module warns and sets fan_in_fan_out), when the base config names a Conv1D
// architecture (conv1d.ts) or the stored shape is [dIn, dOut] ≠ [dOut, dIn]; a square module whose layout neither
// settles is refused when the model looks like a Conv1D one (a Conv1D module name or a shape-proven Conv1D module).

import { AdapterFormatError, ArgumentError, ShapeError } from "../errors.js";
import type { PeftModuleAdapter, SavedTensor } from "../io/peft-adapter.js";
import { baseTensorCandidates, baseWeightShape } from "../io/peft-keys.js";
import type { TensorInfo } from "../io/safetensors.js";
import { type BaseArchitecture, isConv1dModuleName } from "./conv1d.js";

const FLOAT_DTYPES = new Set<string>(["F32", "F16", "BF16", "F64"]);

/** An adapter as the merge needs it (a PeftAdapter or an MlxAdapter fits). */
export interface MergeableAdapter {
  modules: readonly PeftModuleAdapter[];
  modulesToSave?: ReadonlyMap<string, SavedTensor>;
}

/** One module to merge into a base tensor. */
export interface PlannedModule {
  module: PeftModuleAdapter;
  /** The base weight is stored [dOut, dIn] (= Wᵀ). */
  transposed: boolean;
  /** The module's own saved base weight, merged into instead of the file's (save_embedding_layers). */
  baseWeight?: SavedTensor;
}

/** The merge plan, keyed by base tensor name. */
export interface MergePlan {
  modules: Map<string, PlannedModule>;
  replaced: Map<string, SavedTensor>;
  /** Output shapes that differ from the base file's (a saved base layer of another size, e.g. added tokens). */
  shapes: Map<string, number[]>;
  warnings: string[];
}

function findBase(tensors: ReadonlyMap<string, TensorInfo>, candidates: string[]): TensorInfo | undefined {
  for (const c of candidates) {
    const t = tensors.get(c);
    if (t) return t;
  }
  return undefined;
}

/** At most `n` items and "and K more": messages about many modules stay one readable line (details keep all). */
function listSome(items: readonly string[], n = 3): string {
  return items.length <= n ? items.join("; ") : `${items.slice(0, n).join("; ")}; and ${items.length - n} more`;
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Whether a linear module's base weight is stored [dIn, dOut]; null when it cannot be known. */
function conv1dLayout(m: PeftModuleAdapter, t: TensorInfo, arch: BaseArchitecture, suspect: boolean): boolean | null {
  if (m.kind !== "linear") return true;
  if (m.fanInFanOut) return true;
  const dIn = m.down.rows;
  const dOut = m.up.cols;
  if (arch.conv1d && isConv1dModuleName(m.modulePath)) return true;
  if (dIn !== dOut) return same(t.shape, [dIn, dOut]);
  if (arch.known || !suspect) return false;
  return null;
}

/**
 * Plans a merge; throws before anything is written.
 * @throws {AdapterFormatError} "missing_tensor"   @throws {ShapeError} "shape_mismatch"
 * @throws {ArgumentError} "invalid_argument" (a tensor targeted twice)
 * @throws {AdapterFormatError} "ambiguous_layout" (a square module that may be Conv1D or Linear)
 */
export function planMerge(
  op: string,
  tensors: ReadonlyMap<string, TensorInfo>,
  adapter: MergeableAdapter,
  arch: BaseArchitecture,
): MergePlan {
  const missing: string[] = [];
  const mismatched: string[] = [];
  const unknown: string[] = [];
  const plan: MergePlan = { modules: new Map(), replaced: new Map(), shapes: new Map(), warnings: [] };
  const claim = (name: string, what: string) => {
    if (plan.modules.has(name) || plan.replaced.has(name))
      throw new ArgumentError("invalid_argument", `${op}: base tensor "${name}" is targeted twice (second: ${what})`, {
        name,
      });
  };
  const found = adapter.modules.map((m) => ({ m, t: findBase(tensors, baseTensorCandidates(m.modulePath)) }));
  // a non-square module stored [dIn, dOut] with fan_in_fan_out false, or a Conv1D name, makes square ones suspect
  const suspect = found.some(
    ({ m, t }) =>
      m.kind === "linear" &&
      !m.fanInFanOut &&
      (isConv1dModuleName(m.modulePath) ||
        (t !== undefined && m.down.rows !== m.up.cols && same(t.shape, [m.down.rows, m.up.cols]))),
  );
  const switched: string[] = [];
  // a module's own bias (PEFT bias "lora_only"/"all") replaces the base bias next to its weight
  const biasOf = (m: PeftModuleAdapter, bias: Float32Array, weight: TensorInfo) => {
    const name = weight.name.replace(/weight$/, "bias");
    const t = tensors.get(name);
    if (t === undefined) missing.push(`bias "${name}" of module "${m.modulePath}" (the adapter carries one)`);
    else if (!same(t.shape, [bias.length]))
      mismatched.push(
        `"${name}" is [${t.shape.join(", ")}], the adapter's bias of "${m.modulePath}" is [${bias.length}]`,
      );
    else {
      claim(name, `the bias of module "${m.modulePath}"`);
      plan.replaced.set(name, { dtype: "F32", shape: [bias.length], data: bias });
    }
  };
  for (const { m, t } of found) {
    if (!t) {
      const candidates = baseTensorCandidates(m.modulePath);
      missing.push(`"${m.modulePath}" (tried ${candidates.map((c) => `"${c}"`).join(", ")})`);
      continue;
    }
    const stored = conv1dLayout(m, t, arch, suspect);
    if (stored === null) {
      unknown.push(`"${m.modulePath}" ("${t.name}" [${t.shape.join(", ")}])`);
      continue;
    }
    if (m.kind === "linear" && stored && !m.fanInFanOut) switched.push(m.modulePath);
    const want = baseWeightShape(m.kind, stored, m.down.rows, m.up.cols);
    const own = m.baseWeight;
    const fits = own !== undefined ? t.shape.length === 2 : same(t.shape, want);
    if (!fits || !FLOAT_DTYPES.has(t.dtype) || (own !== undefined && !same(own.shape, want))) {
      const what = own !== undefined ? `its saved base layer is [${own.shape.join(", ")}]` : `module "${m.modulePath}"`;
      mismatched.push(`"${t.name}" is ${t.dtype} [${t.shape.join(", ")}], expected [${want.join(", ")}] for ${what}`);
      continue;
    }
    claim(t.name, `module "${m.modulePath}"`);
    plan.modules.set(t.name, { module: m, transposed: !stored, ...(own !== undefined ? { baseWeight: own } : {}) });
    if (own !== undefined && !same(own.shape, t.shape)) plan.shapes.set(t.name, [...own.shape]);
    if (m.bias !== undefined) biasOf(m, m.bias, t);
  }
  for (const [key, saved] of adapter.modulesToSave ?? []) {
    const t = findBase(tensors, [key, key.slice(key.indexOf(".") + 1)]);
    if (!t) {
      missing.push(`saved tensor "${key}"`);
      continue;
    }
    if (!same(t.shape, saved.shape)) {
      mismatched.push(
        `"${t.name}" is [${t.shape.join(", ")}], the adapter's saved "${key}" is [${saved.shape.join(", ")}]`,
      );
      continue;
    }
    claim(t.name, `saved tensor "${key}"`);
    plan.replaced.set(t.name, saved);
  }
  if (missing.length > 0)
    throw new AdapterFormatError(
      "missing_tensor",
      `${op}: ${missing.length} adapter module(s) have no tensor in the base model: ${listSome(missing)} (nothing was written)`,
      { missing },
    );
  if (mismatched.length > 0)
    throw new ShapeError(
      "shape_mismatch",
      `${op}: ${mismatched.length} base tensor(s) do not fit the adapter: ${listSome(mismatched)} (nothing was written)`,
      { mismatched },
    );
  if (unknown.length > 0)
    throw new AdapterFormatError(
      "ambiguous_layout",
      `${op}: ${unknown.length} square module(s) have fan_in_fan_out false in a model that looks like a Conv1D one (GPT-2 kin), so their stored layout ([dOut, dIn] or [dIn, dOut]) cannot be known: ${listSome(unknown)}; put the base model's config.json next to it or set fan_in_fan_out in adapter_config.json (nothing was written)`,
      { modules: unknown },
    );
  if (switched.length > 0)
    plan.warnings.push(
      `${op}: ${switched.length} module(s) have fan_in_fan_out false but are Conv1D layers (stored [dIn, dOut]); merged as fan_in_fan_out true, as PEFT does: ${switched.slice(0, 3).join(", ")}${switched.length > 3 ? ` and ${switched.length - 3} more` : ""}`,
    );
  return plan;
}

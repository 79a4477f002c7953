// The tensors of a PEFT adapter file that are not LoRA factors, classified as PEFT would load them:
//   "<module>.base_layer.bias" (or "<module>.bias") of a LoRA module  → that module's own bias [dOut]
//   "<module>.base_layer.weight" of a LoRA module (save_embedding_layers) → its full base weight, stored layout
//   a tensor of a module whose path (or an ancestor's) ends with a modules_to_save entry → a saved full tensor
//   any ".bias" with bias "all"                                          → a saved full tensor
//   with modules_to_save null, a tensor of a default task head (classifier, score, qa_outputs) → a saved full
//     tensor and a warning: PEFT before 0.7 added those heads to the model, not to the config
// PEFT's modules_to_save match is a plain string suffix test on the module name (peft/utils/other.py
// _set_trainable: key.endswith(target_key)), so "classifier" also selects "pre_classifier".

import { AdapterFormatError } from "../errors.js";
import type { PeftConfig } from "./peft-config.js";
import { parseBaseLayerKey, plainModelKey } from "./peft-keys.js";

/** Why a full tensor is in the adapter file. */
export type SavedRole = "modules_to_save" | "bias" | "task_head";

/** Heads PEFT's task models add to modules_to_save (PeftModelForSequenceClassification, …ForQuestionAnswering). */
export const DEFAULT_TASK_HEADS: readonly string[] = ["classifier", "score", "qa_outputs"];

/** Where one non-LoRA tensor goes. */
export type SavedPlace =
  | { to: "module"; modulePath: string; param: "weight" | "bias"; key: string }
  | { to: "saved"; key: string; role: SavedRole };

/** The module paths above a tensor's key, nearest first: "a.b.weight" → ["a.b", "a"]. */
function ancestors(key: string): string[] {
  const parts = key.split(".");
  const out: string[] = [];
  for (let i = parts.length - 1; i > 0; i--) out.push(parts.slice(0, i).join("."));
  return out;
}

/** Whether PEFT's modules_to_save (suffix match on the module name or one of its ancestors) selects a tensor key. */
export function savedByModulesToSave(entries: readonly string[] | null, key: string): boolean {
  if (entries === null || entries.length === 0) return false;
  return ancestors(key).some((path) => entries.some((e) => path.endsWith(e)));
}

/**
 * Classifies a non-LoRA tensor of an adapter file (its on-disk name).
 * @throws {AdapterFormatError} "unexpected_tensor" when PEFT would not have saved it
 */
export function placeSavedTensor(
  op: string,
  name: string,
  config: PeftConfig,
  isModule: (path: string) => boolean,
): SavedPlace {
  const key = plainModelKey(name);
  const own = parseBaseLayerKey(key, isModule);
  if (own !== null) return { to: "module", modulePath: own.modulePath, param: own.param, key };
  if (savedByModulesToSave(config.modulesToSave, key)) return { to: "saved", key, role: "modules_to_save" };
  if (config.bias === "all" && key.endsWith(".bias")) return { to: "saved", key, role: "bias" };
  if (config.modulesToSave === null && savedByModulesToSave(DEFAULT_TASK_HEADS, key))
    return { to: "saved", key, role: "task_head" };
  throw new AdapterFormatError(
    "unexpected_tensor",
    `${op}: tensor "${name}" is neither a LoRA tensor, a LoRA module's base layer, part of modules_to_save (${JSON.stringify(config.modulesToSave)}) nor a bias (bias "${config.bias}")`,
    { name },
  );
}

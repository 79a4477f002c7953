// Which base models store linear layers as transformers' Conv1D ([dIn, dOut], PEFT's fan_in_fan_out): GPT-2 and
// the models built from its blocks. Read from the base model's config.json (model_type, architectures).

import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** What the base model's config says about its layers. */
export interface BaseArchitecture {
  /** A config.json with a model_type was found. */
  known: boolean;
  /** Its model type uses Conv1D for c_attn / c_proj / c_fc / q_attn. */
  conv1d: boolean;
  modelType?: string;
}

/** model_type values of transformers models whose attention and MLP layers are Conv1D. */
export const CONV1D_MODEL_TYPES: readonly string[] = ["gpt2", "openai-gpt", "imagegpt", "decision_transformer"];
const CONV1D_ARCHITECTURES = /^(GPT2|OpenAIGPT|ImageGPT|DecisionTransformer)/;
const CONV1D_NAMES = new Set(["c_attn", "c_proj", "c_fc", "q_attn"]);

/** Whether a module's last name is one GPT-2's Conv1D layers use (c_attn, c_proj, c_fc, q_attn). */
export function isConv1dModuleName(modulePath: string): boolean {
  return CONV1D_NAMES.has(modulePath.slice(modulePath.lastIndexOf(".") + 1));
}

/** The architecture facts of a parsed config.json (anything else: unknown). */
export function architectureFromConfig(config: unknown): BaseArchitecture {
  if (config === null || typeof config !== "object" || Array.isArray(config)) return { known: false, conv1d: false };
  const c = config as { model_type?: unknown; architectures?: unknown };
  const archs = Array.isArray(c.architectures) ? c.architectures.filter((a) => typeof a === "string") : [];
  if (typeof c.model_type !== "string" && archs.length === 0) return { known: false, conv1d: false };
  const modelType = typeof c.model_type === "string" ? c.model_type : undefined;
  const conv1d =
    (modelType !== undefined && CONV1D_MODEL_TYPES.includes(modelType)) ||
    archs.some((a) => CONV1D_ARCHITECTURES.test(a as string));
  return { known: true, conv1d, ...(modelType !== undefined ? { modelType } : {}) };
}

/** Reads config.json next to a base model file; unknown when there is none or it is not JSON. */
export async function readBaseArchitecture(basePath: string): Promise<BaseArchitecture> {
  try {
    return architectureFromConfig(JSON.parse(await readFile(join(dirname(basePath), "config.json"), "utf8")));
  } catch {
    return { known: false, conv1d: false };
  }
}

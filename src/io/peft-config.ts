// adapter_config.json (Hugging Face PEFT, peft_type "LORA") → a validated, defaulted config. Every problem is
// collected with its JSON path and thrown as one ConfigError; unknown keys are kept and reported as warnings.
// Pattern and target matching follow PEFT (src/peft/utils/other.py get_pattern_key, tuners_utils
// check_target_module_exists); keys are Python regexes from the file, run by safe-regex.ts without backtracking
// so that no key (e.g. "(.*)*z") can hang the process.

import { ConfigError, type ConfigIssue } from "../errors.js";
import { compileSafeRegex, type SafeRegex, SafeRegexError } from "./safe-regex.js";

/** A validated LoRA adapter config in lorakit's names; `raw` keeps every key as read (defaults not added). */
export interface PeftConfig {
  peftType: "LORA";
  r: number;
  loraAlpha: number;
  useRslora: boolean;
  useDora: boolean;
  /** Regex key → rank override, in the file's insertion order (first match wins). */
  rankPattern: ReadonlyMap<string, number>;
  /** Regex key → alpha override, in the file's insertion order (first match wins). */
  alphaPattern: ReadonlyMap<string, number>;
  fanInFanOut: boolean;
  bias: "none" | "all" | "lora_only";
  loraBias: boolean;
  /** A regex matching the whole module path, a de-duplicated list of names, or null (architecture default). */
  targetModules: string | string[] | null;
  excludeModules: string | string[] | null;
  modulesToSave: string[] | null;
  loraDropout: number;
  initLoraWeights: boolean | string;
  baseModelNameOrPath: string | null;
  revision: string | null;
  taskType: string | null;
  inferenceMode: boolean;
  /** Every key of the file, unknown ones included, as parsed. */
  raw: Record<string, unknown>;
}

/** The result of parsePeftConfig: the config and one warning per unknown key. */
export interface ParsedPeftConfig {
  config: PeftConfig;
  warnings: string[];
}

/** Defaults of the keys that matter for the math, as PEFT's LoraConfig declares them. */
export const PEFT_DEFAULTS = {
  r: 8,
  lora_alpha: 8,
  use_rslora: false,
  use_dora: false,
  fan_in_fan_out: false,
  bias: "none",
  lora_bias: false,
  lora_dropout: 0,
  init_lora_weights: true,
  inference_mode: false,
} as const;

// Every field PEFT 0.21's LoraConfig (and its PeftConfig base) writes, as of huggingface/peft
// src/peft/tuners/lora/config.py at 2026-08: the ones lorakit reads, the ones that only affect training,
// initialisation or metadata (eva, corda, loftq, lora_ga: initialisations; velora: a training-time backward pass;
// monteclora: sampling in training mode only, plain LoRA in eval), and the variants refused below. Plus two keys
// of early PEFT versions: merge_weights (ignored) and enable_lora (MergedLinear, refused when set).
const KNOWN_KEYS = new Set([
  "peft_type",
  "r",
  "lora_alpha",
  "use_rslora",
  "use_dora",
  "rank_pattern",
  "alpha_pattern",
  "fan_in_fan_out",
  "bias",
  "lora_bias",
  "target_modules",
  "exclude_modules",
  "modules_to_save",
  "layer_replication",
  "lora_dropout",
  "init_lora_weights",
  "base_model_name_or_path",
  "revision",
  "task_type",
  "inference_mode",
  "peft_version",
  "auto_mapping",
  "layers_pattern",
  "layers_to_transform",
  "loftq_config",
  "corda_config",
  "eva_config",
  "megatron_config",
  "megatron_core",
  "qalora_group_size",
  "use_qalora",
  "use_bdlora",
  "alora_invocation_tokens",
  "target_parameters",
  "trainable_token_indices",
  "ensure_weight_tying",
  "lora_ga_config",
  "velora_config",
  "monteclora_config",
  "arrow_config",
  "kasa_config",
  "runtime_config",
  "merge_weights",
  "enable_lora",
]);

// Variants that change the math in ways lorakit does not implement: a set value is an error, not a guess.
const UNSUPPORTED: readonly { key: string; isSet: (v: unknown) => boolean; what: string }[] = [
  { key: "use_qalora", isSet: (v) => v === true, what: "QA-LoRA (use_qalora)" },
  { key: "use_bdlora", isSet: (v) => v !== undefined && v !== null && v !== false, what: "block-diagonal LoRA" },
  { key: "alora_invocation_tokens", isSet: (v) => v !== undefined && v !== null, what: "activated LoRA (aLoRA)" },
  { key: "layer_replication", isSet: (v) => v !== undefined && v !== null, what: "layer replication" },
  { key: "lora_bias", isSet: (v) => v === true, what: "a LoRA bias on up (lora_bias)" },
  { key: "target_parameters", isSet: nonEmpty, what: "LoRA on raw parameters (target_parameters)" },
  { key: "trainable_token_indices", isSet: nonEmpty, what: "trainable tokens (trainable_token_indices)" },
  { key: "arrow_config", isSet: nonEmpty, what: "Arrow routing among LoRA experts (arrow_config)" },
  {
    key: "kasa_config",
    isSet: nonEmpty,
    what: "KaSA (kasa_config: a singular-value diagonal between the factors and an SVD-truncated base weight)",
  },
  { key: "enable_lora", isSet: nonEmpty, what: "MergedLinear LoRA on parts of a fused projection (enable_lora)" },
];

function nonEmpty(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "object") return "an object";
  return String(v);
}

/** Reads fields of one JSON object, recording every problem instead of stopping at the first. */
class Reader {
  readonly issues: ConfigIssue[] = [];
  constructor(readonly o: Record<string, unknown>) {}

  fail(path: (string | number)[], message: string): void {
    this.issues.push({ path, message });
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.o[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v === "boolean") return v;
    this.fail([key], `${key} must be true or false, got ${describe(v)}`);
    return fallback;
  }

  stringOrNull(key: string): string | null {
    const v = this.o[key];
    if (v === undefined || v === null) return null;
    if (typeof v === "string") return v;
    this.fail([key], `${key} must be a string or null, got ${describe(v)}`);
    return null;
  }

  positiveInt(path: (string | number)[], v: unknown, fallback: number): number {
    if (typeof v === "number" && Number.isSafeInteger(v) && v > 0) return v;
    this.fail(path, `${path.join(".")} must be a positive integer, got ${describe(v)}`);
    return fallback;
  }

  finite(path: (string | number)[], v: unknown, fallback: number): number {
    if (typeof v === "number" && Number.isFinite(v)) return v;
    this.fail(path, `${path.join(".")} must be a finite number, got ${describe(v)}`);
    return fallback;
  }

  regex(path: (string | number)[], source: string, wrap: (s: string) => string): void {
    const r = compileOrReason(wrap(source));
    if (typeof r === "string")
      this.fail(
        path,
        `${path.join(".")} is not a regular expression lorakit can match: ${JSON.stringify(source.slice(0, 200))} (${r})`,
      );
  }

  pattern(key: string, kind: "int" | "number"): Map<string, number> {
    const out = new Map<string, number>();
    const v = this.o[key];
    if (v === undefined || v === null) return out;
    if (typeof v !== "object" || Array.isArray(v)) {
      this.fail([key], `${key} must be an object mapping module patterns to numbers, got ${describe(v)}`);
      return out;
    }
    for (const [k, n] of Object.entries(v as Record<string, unknown>)) {
      this.regex([key, k], k, patternSource);
      const val = kind === "int" ? this.positiveInt([key, k], n, 0) : this.finite([key, k], n, 0);
      out.set(k, val);
    }
    return out;
  }

  targets(key: string): string | string[] | null {
    const v = this.o[key];
    if (v === undefined || v === null) return null;
    if (typeof v === "string") {
      this.regex([key], v, fullMatchSource);
      return v;
    }
    if (!Array.isArray(v)) {
      this.fail([key], `${key} must be a string (regex), a list of module names or null, got ${describe(v)}`);
      return null;
    }
    const names: string[] = [];
    v.forEach((e, i) => {
      if (typeof e === "string") {
        if (!names.includes(e)) names.push(e);
      } else this.fail([key, i], `${key}[${i}] must be a string, got ${describe(e)}`);
    });
    return names;
  }
}

/** Regex source of PEFT's rank/alpha pattern match: (.*\.)?(key)$ anchored at the start (re.match). */
function patternSource(key: string): string {
  return `(?:.*\\.)?(?:${key})$`;
}

/** Regex source of a string target_modules: the whole module path must match (re.fullmatch). */
function fullMatchSource(key: string): string {
  return key;
}

// Compiled patterns by source, or why a source cannot be compiled; bounded so that a stream of distinct configs
// cannot grow it without limit.
const CACHE = new Map<string, SafeRegex | string>();
function compileOrReason(source: string): SafeRegex | string {
  let r = CACHE.get(source);
  if (r === undefined) {
    try {
      r = compileSafeRegex(source);
    } catch (e) {
      if (!(e instanceof SafeRegexError)) throw e;
      r = e.message;
    }
    if (CACHE.size >= 1024) CACHE.clear();
    CACHE.set(source, r);
  }
  return r;
}

// For a pattern handed straight to patternKeyFor / targetsModule (parsePeftConfig reports its own with a path).
function compiled(source: string): SafeRegex {
  const r = compileOrReason(source);
  if (typeof r === "string")
    throw new ConfigError("pattern", [
      { path: [], message: `${JSON.stringify(source.slice(0, 200))} is not a pattern lorakit can match (${r})` },
    ]);
  return r;
}

/**
 * Validates adapter_config.json text or its parsed object and fills PEFT's defaults.
 * @param input JSON text or an already parsed object   @param source name used in messages
 * @throws {ConfigError} with every problem found, each with its JSON path (code "invalid_config")
 * @example parsePeftConfig('{"peft_type": "LORA", "r": 8, "lora_alpha": 32}').config.r // 8
 */
export function parsePeftConfig(input: string | object, source = "adapter_config.json"): ParsedPeftConfig {
  let doc: unknown = input;
  if (typeof input === "string") {
    try {
      doc = JSON.parse(input);
    } catch (e) {
      throw new ConfigError(source, [{ path: [], message: `malformed JSON (${(e as Error).message})` }]);
    }
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(source, [{ path: [], message: `expected a JSON object, got ${describe(doc)}` }]);
  }
  const o = doc as Record<string, unknown>;
  const rd = new Reader(o);
  if (o.peft_type === undefined) rd.fail(["peft_type"], `peft_type is required (expected "LORA")`);
  else if (o.peft_type !== "LORA")
    rd.fail(["peft_type"], `peft_type must be "LORA", got ${describe(o.peft_type)} (lorakit reads LoRA adapters only)`);
  for (const u of UNSUPPORTED) {
    if (u.isSet(o[u.key])) rd.fail([u.key], `${u.key} is ${describe(o[u.key])}: ${u.what} is not supported by lorakit`);
  }
  const r = o.r === undefined || o.r === null ? PEFT_DEFAULTS.r : rd.positiveInt(["r"], o.r, PEFT_DEFAULTS.r);
  const loraAlpha =
    o.lora_alpha === undefined || o.lora_alpha === null
      ? PEFT_DEFAULTS.lora_alpha
      : rd.finite(["lora_alpha"], o.lora_alpha, PEFT_DEFAULTS.lora_alpha);
  const bias = o.bias ?? PEFT_DEFAULTS.bias;
  if (bias !== "none" && bias !== "all" && bias !== "lora_only")
    rd.fail(["bias"], `bias must be "none", "all" or "lora_only", got ${describe(bias)}`);
  const loraDropout = o.lora_dropout ?? PEFT_DEFAULTS.lora_dropout;
  if (typeof loraDropout !== "number" || !(loraDropout >= 0 && loraDropout < 1))
    rd.fail(["lora_dropout"], `lora_dropout must be a number in [0, 1), got ${describe(loraDropout)}`);
  const init = o.init_lora_weights ?? PEFT_DEFAULTS.init_lora_weights;
  if (typeof init !== "boolean" && typeof init !== "string")
    rd.fail(["init_lora_weights"], `init_lora_weights must be true, false or a string, got ${describe(init)}`);
  const modulesToSave = readModulesToSave(rd);
  const config: PeftConfig = {
    peftType: "LORA",
    r,
    loraAlpha,
    useRslora: rd.bool("use_rslora", PEFT_DEFAULTS.use_rslora),
    useDora: rd.bool("use_dora", PEFT_DEFAULTS.use_dora),
    rankPattern: rd.pattern("rank_pattern", "int"),
    alphaPattern: rd.pattern("alpha_pattern", "number"),
    fanInFanOut: rd.bool("fan_in_fan_out", PEFT_DEFAULTS.fan_in_fan_out),
    bias: bias as PeftConfig["bias"],
    loraBias: rd.bool("lora_bias", PEFT_DEFAULTS.lora_bias),
    targetModules: rd.targets("target_modules"),
    excludeModules: rd.targets("exclude_modules"),
    modulesToSave,
    loraDropout: typeof loraDropout === "number" ? loraDropout : 0,
    initLoraWeights: typeof init === "boolean" || typeof init === "string" ? init : true,
    baseModelNameOrPath: rd.stringOrNull("base_model_name_or_path"),
    revision: rd.stringOrNull("revision"),
    taskType: rd.stringOrNull("task_type"),
    inferenceMode: rd.bool("inference_mode", PEFT_DEFAULTS.inference_mode),
    raw: { ...o },
  };
  if (rd.issues.length > 0) throw new ConfigError(source, rd.issues);
  const warnings = Object.keys(o)
    .filter((k) => !KNOWN_KEYS.has(k))
    .map((k) => `${source}: unknown key "${k}" kept and ignored (newer PEFT version or another method?)`);
  return { config, warnings };
}

function readModulesToSave(rd: Reader): string[] | null {
  const v = rd.o.modules_to_save;
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.some((e) => typeof e !== "string")) {
    rd.fail(["modules_to_save"], `modules_to_save must be a list of module names or null, got ${describe(v)}`);
    return null;
  }
  return [...new Set(v as string[])];
}

/**
 * The pattern key that applies to a module, as PEFT's get_pattern_key: the first key k (insertion order) for
 * which `(.*\.)?(k)$` matches the module path from its start; undefined when none does.
 * @example patternKeyFor(["q_proj"], "model.layers.0.self_attn.q_proj") // "q_proj"
 */
export function patternKeyFor(keys: Iterable<string>, modulePath: string): string | undefined {
  for (const k of keys) if (compiled(patternSource(k)).fullMatch(modulePath)) return k;
  return undefined;
}

/** The rank and alpha a module gets: rank_pattern / alpha_pattern overrides, else r / lora_alpha. */
export function moduleHyperparams(config: PeftConfig, modulePath: string): { r: number; alpha: number } {
  const rk = patternKeyFor(config.rankPattern.keys(), modulePath);
  const ak = patternKeyFor(config.alphaPattern.keys(), modulePath);
  return {
    r: rk === undefined ? config.r : config.rankPattern.get(rk)!,
    alpha: ak === undefined ? config.loraAlpha : config.alphaPattern.get(ak)!,
  };
}

/** scaling = alpha / r, or alpha / √r with use_rslora. */
export function peftScaling(alpha: number, r: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(r) : alpha / r;
}

/**
 * Whether target_modules (or exclude_modules) selects a module: a string must match the whole path; a list
 * matches a path equal to an entry or ending in "." + entry. null selects nothing here (the architecture
 * default list is not known to lorakit).
 */
export function targetsModule(targets: string | readonly string[] | null, modulePath: string): boolean {
  if (targets === null) return false;
  if (typeof targets === "string") return compiled(fullMatchSource(targets)).fullMatch(modulePath);
  return targets.some((t) => modulePath === t || modulePath.endsWith(`.${t}`));
}

// The LoRA fields of a saved adapter_config.json, derived from the modules so that saving never changes what an
// adapter computes: fan_in_fan_out, use_dora and bias ("lora_only" when modules carry their own bias) come from the
// modules (a config that says otherwise is refused), r and lora_alpha from the config (or, when it gives none, the modules' most common values), and every module the
// top-level values do not describe gets rank_pattern / alpha_pattern entries. The result is checked by reading it
// back the way PEFT does (keys in the file's sorted order, first match wins, peft-config.ts): each module must get
// exactly its r and its scaling bits. A module's written alpha is its scaling times r (or √r with use_rslora).

import { ArgumentError } from "../errors.js";
import type { PeftModuleAdapter } from "./peft-adapter.js";
import { moduleHyperparams, type PeftConfig, peftScaling } from "./peft-config.js";

/** The derived LoRA fields. */
export interface DerivedLoraFields {
  r: number;
  lora_alpha: number;
  use_rslora: boolean;
  use_dora: boolean;
  fan_in_fan_out: boolean;
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  bias: PeftConfig["bias"];
}

const OP = "savePeftAdapter";

function conflict(message: string, details: Record<string, unknown>): ArgumentError {
  return new ArgumentError("config_conflict", `${OP}: ${message}`, details);
}

/** A Python regex matching exactly this text (re.escape of the metacharacters). */
function escapeKey(path: string): string {
  return path.replace(/[.^$*+?{}[\]\\|()]/g, "\\$&");
}

/** The alpha that gives exactly `scaling` for rank r under the rule (alpha / r or alpha / √r). */
export function alphaForScaling(m: PeftModuleAdapter, useRslora: boolean): number {
  if (peftScaling(m.alpha, m.r, useRslora) === m.scaling) return m.alpha;
  if (!Number.isFinite(m.scaling))
    throw conflict(`module "${m.modulePath}" has scaling ${m.scaling}, expected a finite number`, {
      module: m.modulePath,
    });
  let a = m.scaling * (useRslora ? Math.sqrt(m.r) : m.r);
  // the product may round; step to a neighbour whose quotient is the scaling exactly
  const step = (x: number, dir: number) => {
    const f = new Float64Array([x]);
    const i = new BigInt64Array(f.buffer);
    i[0] = i[0]! + BigInt(x >= 0 === dir > 0 ? 1 : -1);
    return f[0]!;
  };
  for (let k = 0; k < 8 && peftScaling(a, m.r, useRslora) !== m.scaling; k++)
    a = step(a, peftScaling(a, m.r, useRslora) < m.scaling ? 1 : -1);
  if (peftScaling(a, m.r, useRslora) !== m.scaling)
    throw conflict(
      `module "${m.modulePath}": no lora_alpha gives its scaling ${m.scaling} exactly with r = ${m.r}${useRslora ? " and use_rslora" : ""}`,
      { module: m.modulePath, scaling: m.scaling, r: m.r },
    );
  return a;
}

// use_rslora: the config's value when every module's scaling can be written exactly under it; when the config
// does not set it, the other rule is tried too (a double scaling s is not always a/r or a/√r for a double a).
function chooseRule(
  config: PeftConfig,
  modules: readonly PeftModuleAdapter[],
): { useRslora: boolean; alphas: Map<string, number> } {
  const given = typeof config.raw.use_rslora === "boolean";
  const rules = given ? [config.useRslora] : [config.useRslora, !config.useRslora];
  let first: unknown;
  for (const useRslora of rules) {
    try {
      return { useRslora, alphas: new Map(modules.map((m) => [m.modulePath, alphaForScaling(m, useRslora)])) };
    } catch (e) {
      first ??= e;
    }
  }
  if (given && first instanceof ArgumentError)
    throw conflict(`${first.message.slice(OP.length + 2)} (the config sets use_rslora ${config.useRslora})`, {
      ...first.details,
      key: "use_rslora",
    });
  throw first;
}

function mostCommon(values: number[], fallback: number): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = fallback;
  let n = 0;
  for (const [v, c] of counts) if (c > n) [best, n] = [v, c];
  return best;
}

/** One flag shared by the modules it applies to; a config value that contradicts them is refused. */
function sharedFlag(
  key: string,
  values: boolean[],
  given: unknown,
  fallback: boolean,
  what: (v: boolean) => string,
): boolean {
  const set = new Set(values);
  if (set.size > 1)
    throw conflict(`the modules mix ${what(true)} and ${what(false)}, which one ${key} cannot express`, { key });
  const derived = set.size === 1 ? values[0]! : typeof given === "boolean" ? given : fallback;
  if (typeof given === "boolean" && given !== derived)
    throw conflict(`the config has ${key} ${given} but the modules are ${what(derived)}`, {
      key,
      given,
      derived,
    });
  return derived;
}

/**
 * Derives the LoRA fields of the config to write for these modules.
 * @throws {ArgumentError} "config_conflict" when the config contradicts the modules
 */
export function deriveLoraFields(config: PeftConfig, modules: readonly PeftModuleAdapter[]): DerivedLoraFields {
  const raw = config.raw;
  const linear = modules.filter((m) => m.kind === "linear");
  const fanInFanOut = sharedFlag(
    "fan_in_fan_out",
    linear.map((m) => m.fanInFanOut),
    raw.fan_in_fan_out,
    false,
    (v) => (v ? "stored [dIn, dOut] (fan_in_fan_out, Conv1D)" : "stored [dOut, dIn] (nn.Linear)"),
  );
  const useDora = sharedFlag(
    "use_dora",
    modules.map((m) => m.magnitude !== undefined),
    raw.use_dora,
    false,
    (v) => (v ? "DoRA (with a magnitude)" : "plain LoRA (no magnitude)"),
  );
  const { useRslora, alphas } = chooseRule(config, modules);
  // modules carrying their own bias were trained with bias "lora_only" (or "all")
  const carriesBias = modules.some((m) => m.bias !== undefined);
  if (carriesBias && config.raw.bias === "none")
    throw conflict('the config has bias "none" but modules carry their own bias (bias "lora_only" or "all")', {
      key: "bias",
    });
  const bias = carriesBias && config.bias === "none" ? "lora_only" : config.bias;
  const r =
    typeof raw.r === "number"
      ? config.r
      : mostCommon(
          modules.map((m) => m.r),
          config.r,
        );
  const loraAlpha =
    typeof raw.lora_alpha === "number" ? config.loraAlpha : mostCommon([...alphas.values()], config.loraAlpha);
  const base = { ...config, r, loraAlpha };
  const build = (keep: boolean) => {
    const cfg: PeftConfig = {
      ...base,
      rankPattern: keep ? config.rankPattern : new Map(),
      alphaPattern: keep ? config.alphaPattern : new Map(),
    };
    const rankPattern: Record<string, number> = Object.fromEntries(cfg.rankPattern);
    const alphaPattern: Record<string, number> = Object.fromEntries(cfg.alphaPattern);
    for (const m of modules) {
      const hp = moduleHyperparams(cfg, m.modulePath);
      if (hp.r !== m.r) rankPattern[escapeKey(m.modulePath)] = m.r;
      if (hp.alpha !== alphas.get(m.modulePath)) alphaPattern[escapeKey(m.modulePath)] = alphas.get(m.modulePath)!;
    }
    return { rankPattern, alphaPattern };
  };
  // PEFT reads the patterns in the file's (sorted) key order, first match wins
  const sorted = (o: Record<string, number>) =>
    new Map(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]!]),
    );
  const reads = (p: { rankPattern: Record<string, number>; alphaPattern: Record<string, number> }) => {
    const cfg: PeftConfig = { ...base, rankPattern: sorted(p.rankPattern), alphaPattern: sorted(p.alphaPattern) };
    return modules.every((m) => {
      const hp = moduleHyperparams(cfg, m.modulePath);
      return hp.r === m.r && peftScaling(hp.alpha, m.r, useRslora) === m.scaling;
    });
  };
  let patterns = build(true);
  if (!reads(patterns)) patterns = build(false);
  if (!reads(patterns)) throw conflict("rank_pattern / alpha_pattern cannot give every module its r and scaling", {});
  return {
    r,
    lora_alpha: loraAlpha,
    use_rslora: useRslora,
    use_dora: useDora,
    fan_in_fan_out: fanInFanOut,
    rank_pattern: patterns.rankPattern,
    alpha_pattern: patterns.alphaPattern,
    bias,
  };
}

// Creation of a LoraLinear adapter from user options: validation (all checks before anything is allocated or
// stored), initialisation and the record the layer keeps. down: [dIn, r], up: [r, dOut], magnitude: [dOut].

import { AdapterStateError, ArgumentError, ShapeError } from "../errors.js";
import type { FloatArray, Matrix } from "../matrix.js";
import { alloc, checkLowRank, type variantContext } from "./base.js";
import { INIT_KINDS, type InitKind, initLowRank } from "./init.js";
import { requireFinite } from "./operand.js";
import { createRng, type Rng } from "./rng.js";
import { localFloatArray } from "./typed.js";
import {
  type LoraVariant,
  readScalingRule,
  type ScalingRule,
  scalingFor,
  type VariantAdapter,
  variantFor,
} from "./variants.js";

/** Options of addAdapter for a new, initialised adapter. */
export interface NewAdapterOptions {
  /** Rank r ≥ 1. */
  r: number;
  /** lora_alpha; scaling = alpha / r (or alpha / √r with scaling "rslora"). Default r (scaling 1). */
  alpha?: number;
  scaling?: ScalingRule;
  /** Explicit scaling factor; overrides alpha and the rule. */
  scale?: number;
  /** "default" (down kaiming-uniform, up 0), "gaussian" (down N(0, 1/r²), up 0), "none" (both random). */
  init?: InitKind;
  /** Dropout probability on the LoRA branch input in training mode, 0 ≤ p < 1. Default 0. */
  dropout?: number;
  useDora?: boolean;
  /** Seed of the initialisation and dropout generators. Default: derived from the layer seed and the name. */
  seed?: number;
}

/** Options of addAdapter for given matrices (copied into the layer). */
export interface GivenAdapterOptions {
  down: Matrix;
  up: Matrix;
  /** Default r (scaling 1). */
  alpha?: number;
  scaling?: ScalingRule;
  scale?: number;
  dropout?: number;
  useDora?: boolean;
  /** DoRA magnitude [dOut]; default ‖W + scaling·down·up‖ per output column. */
  magnitude?: FloatArray;
  seed?: number;
}

export type AdapterOptions = NewAdapterOptions | GivenAdapterOptions;

/** An adapter as the layer stores it. */
export interface AdapterRecord extends VariantAdapter {
  name: string;
  alpha: number;
  dropout: number;
  useDora: boolean;
  variant: LoraVariant;
  /** Dropout mask generator. */
  rng: Rng;
}

/** FNV-1a of a string, for per-name default seeds. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function readProbability(op: string, v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== "number" || !(v >= 0 && v < 1)) {
    throw new ArgumentError("invalid_argument", `${op}: dropout must be a number in [0, 1), got ${String(v)}`, {
      name: "dropout",
      value: v,
    });
  }
  return v;
}

function readRank(op: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new ShapeError("invalid_rank", `${op}: r must be a positive integer, got ${String(v)}`, {
      name: "r",
      value: v,
    });
  }
  return v;
}

/** The layer's facts an adapter is created against. */
export interface LayerFacts {
  dIn: number;
  dOut: number;
  weight: FloatArray;
  seed: number;
  context: ReturnType<typeof variantContext>;
  has(name: string): boolean;
  /** Allocates down and up (default: like the weight, in the JavaScript heap). */
  allocLowRank?: (length: number) => FloatArray;
}

/** Validates options and builds a new adapter record; throws before any state exists. */
export function createAdapter(op: string, name: unknown, options: unknown, layer: LayerFacts): AdapterRecord {
  if (typeof name !== "string" || name.length === 0) {
    throw new ArgumentError("invalid_argument", `${op}: name must be a non-empty string, got ${JSON.stringify(name)}`, {
      name: "name",
    });
  }
  if (layer.has(name)) {
    throw new AdapterStateError(
      "duplicate_adapter",
      `${op}: adapter "${name}" already exists; remove it first or pick another name`,
      {
        name,
      },
    );
  }
  if (options === null || typeof options !== "object") {
    throw new ArgumentError("invalid_argument", `${op}: options must be an object with r (or down and up)`, {
      name: "options",
    });
  }
  const o = options as Partial<NewAdapterOptions & GivenAdapterOptions>;
  const given = o.down !== undefined || o.up !== undefined;
  const { dIn, dOut, weight } = layer;
  const r = given ? checkLowRank(op, o.down, o.up, dIn, dOut, weight) : readRank(op, o.r);
  if (given && o.r !== undefined && o.r !== r) {
    throw new ShapeError(
      "invalid_rank",
      `${op}: r is ${String(o.r)} but down has ${r} columns (r = ${r}); omit r or make them agree`,
      {
        name: "r",
        value: o.r,
        expected: r,
      },
    );
  }
  const alpha = o.alpha === undefined ? r : requireFinite(op, "alpha", o.alpha);
  const rule = readScalingRule(op, o.scaling);
  const scaling = o.scale === undefined ? scalingFor(alpha, r, rule) : requireFinite(op, "scale", o.scale);
  const dropout = readProbability(op, o.dropout);
  const useDora = o.useDora === true;
  const init = o.init ?? "default";
  if (!INIT_KINDS.includes(init)) {
    throw new ArgumentError(
      "invalid_argument",
      `${op}: init is ${JSON.stringify(init)}, expected "default", "gaussian" or "none"`,
      {
        name: "init",
      },
    );
  }
  const seed = o.seed === undefined ? (layer.seed ^ hashName(name)) >>> 0 : requireFinite(op, "seed", o.seed);
  if (o.magnitude !== undefined) checkMagnitude(op, o.magnitude, useDora, layer);

  const down = layer.allocLowRank ? layer.allocLowRank(dIn * r) : alloc(weight, dIn * r);
  const up = layer.allocLowRank ? layer.allocLowRank(r * dOut) : alloc(weight, r * dOut);
  if (given) {
    down.set(o.down!.data);
    up.set(o.up!.data);
  } else initLowRank(init, down, up, dIn, r, createRng(seed));
  const rec: AdapterRecord = {
    name,
    r,
    alpha,
    scaling,
    dropout,
    useDora,
    variant: variantFor(useDora),
    down: { data: down, rows: dIn, cols: r },
    up: { data: up, rows: r, cols: dOut },
    gradDown: alloc(weight, dIn * r),
    gradUp: alloc(weight, r * dOut),
    rng: createRng(seed ^ 0x5bd1e995),
  };
  if (useDora) {
    rec.magnitude = alloc(weight, dOut);
    rec.gradMagnitude = alloc(weight, dOut);
    if (o.magnitude !== undefined) rec.magnitude.set(o.magnitude);
    else rec.variant.init(layer.context, rec);
  }
  return rec;
}

function checkMagnitude(op: string, m: unknown, useDora: boolean, layer: LayerFacts): void {
  if (!useDora) {
    throw new ArgumentError("invalid_argument", `${op}: magnitude is only used with useDora: true`, {
      name: "magnitude",
    });
  }
  const local = localFloatArray(m); // any realm's typed array
  if (local === null || local.constructor !== layer.weight.constructor) {
    throw new ArgumentError(
      "dtype_mismatch",
      `${op}: magnitude must be a ${layer.weight.constructor.name} like the base weight`,
      {
        name: "magnitude",
      },
    );
  }
  if (local.length !== layer.dOut) {
    throw new ShapeError(
      "shape_mismatch",
      `${op}: magnitude has shape [${local.length}], expected [${layer.dOut}] (dOut)`,
      {
        name: "magnitude",
        shape: [local.length],
        expected: [layer.dOut],
      },
    );
  }
}

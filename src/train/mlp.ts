// A multilayer perceptron: linear → activation → … → linear (no activation after the last layer).
// x: [n, sizes[0]] → logits: [n, sizes.at(-1)]. Each dense layer is any Module with Linear's interface, so a
// LoraLinear built over a trained Linear's weight can replace it (mapLinears) without changing the model code.
// Module paths follow PyTorch's nn.Sequential(Linear, act, Linear, act, Linear): the dense layers are "0", "2", ….

import { ArgumentError } from "../errors.js";
import type { Rng } from "../lora/rng.js";
import type { Matrix } from "../matrix.js";
import { checkResultSize } from "../shape.js";
import { type ActivationName, activation } from "./activation.js";
import { badArgument, requireModule, requireObject, requireRng } from "./check.js";
import { Linear } from "./linear.js";
import type { Module, TrainParam } from "./module.js";

/** Options of Mlp.init. */
export interface MlpInitOptions {
  /** Layer widths [dIn, hidden…, dOut]; at least two entries, all positive integers. */
  sizes: readonly number[];
  /** Hidden activation, default "relu". */
  activation?: ActivationName;
  /** Whether the dense layers have a bias, default true. */
  bias?: boolean;
}

const ACTIVATIONS: readonly ActivationName[] = ["relu", "gelu"];

function checkActivation(op: string, name: string, v: unknown): void {
  if (!ACTIVATIONS.includes(v as ActivationName)) throw badArgument(op, name, v, '"relu" or "gelu"');
}

/** An MLP with explicit forward/backward through its layers. */
export class Mlp implements Module {
  readonly linears: readonly Module[];
  readonly activationName: ActivationName;
  private readonly activations: Module[];

  constructor(linears: readonly Module[], activationName: ActivationName = "relu") {
    if (!Array.isArray(linears)) throw badArgument("Mlp", "linears", linears, "an array of dense layers (Modules)");
    for (let i = 0; i < linears.length; i++) requireModule("Mlp", `linears[${i}]`, linears[i]);
    checkActivation("Mlp", "activationName", activationName);
    if (linears.length === 0)
      throw new ArgumentError("invalid_argument", "Mlp: linears is empty, expected at least one dense layer");
    this.linears = linears;
    this.activationName = activationName;
    this.activations = linears.slice(1).map(() => activation(activationName));
  }

  /**
   * A float64 MLP with He-uniform weights drawn from rng, layer by layer.
   * @throws {ArgumentError} sizes has fewer than two entries or a non-positive width ("invalid_argument")
   */
  static init(options: MlpInitOptions, rng: Rng): Mlp {
    requireObject("Mlp.init", "options", options, "an options object { sizes, activation?, bias? }");
    const { sizes, activation: act = "relu", bias = true } = options;
    if (!Array.isArray(sizes))
      throw badArgument("Mlp.init", "sizes", sizes, "an array [dIn, …, dOut] of positive integers");
    checkActivation("Mlp.init", "activation", act);
    requireRng("Mlp.init", "rng", rng);
    if (sizes.length < 2 || sizes.some((s) => !Number.isInteger(s) || s < 1))
      throw new ArgumentError(
        "invalid_argument",
        `Mlp.init: sizes is [${sizes.join(", ")}], expected at least two positive integers [dIn, …, dOut]`,
        { sizes },
      );
    // every layer's size before the first allocation: a huge last layer is refused at once
    for (let i = 0; i + 1 < sizes.length; i++)
      checkResultSize("Mlp.init", `layer ${i}'s weight`, [sizes[i]!, sizes[i + 1]!]);
    const linears: Linear[] = [];
    for (let i = 0; i + 1 < sizes.length; i++) linears.push(Linear.init(sizes[i]!, sizes[i + 1]!, rng, { bias }));
    return new Mlp(linears, act);
  }

  /** PyTorch nn.Sequential path of dense layer i ("0", "2", "4", …). */
  static modulePath(i: number): string {
    return String(2 * i);
  }

  /** A new Mlp whose dense layers are fn(layer, i); fn may return the same layer, a copy or a LoraLinear. */
  mapLinears(fn: (layer: Module, index: number) => Module): Mlp {
    if (typeof fn !== "function") throw badArgument("Mlp.mapLinears", "fn", fn, "a function (layer, index) => layer");
    return new Mlp(
      this.linears.map((l, i) => fn(l, i)),
      this.activationName,
    );
  }

  /** A deep copy; every dense layer must be a Linear. */
  clone(): Mlp {
    return this.mapLinears((l) => {
      if (!(l instanceof Linear))
        throw new ArgumentError("invalid_argument", "Mlp.clone: only an Mlp of Linear layers can be cloned");
      return l.clone();
    });
  }

  forward(x: Matrix): Matrix {
    let h = x;
    for (let i = 0; i < this.linears.length; i++) {
      h = this.linears[i]!.forward(h);
      const act = this.activations[i];
      if (act !== undefined) h = act.forward(h);
    }
    return h;
  }

  backward(dH: Matrix): Matrix {
    let d = dH;
    for (let i = this.linears.length - 1; i >= 0; i--) {
      const act = this.activations[i];
      if (act !== undefined) d = act.backward(d);
      d = this.linears[i]!.backward(d);
    }
    return d;
  }

  parameters(): TrainParam[] {
    return this.linears.flatMap((l) => l.parameters());
  }

  zeroGrad(): void {
    for (const l of this.linears) l.zeroGrad();
  }

  train(on: boolean): void {
    for (const l of this.linears) l.train?.(on);
  }
}

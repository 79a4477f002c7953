// Seeded shuffling and seed derivation for training, on top of lorakit's PRNG (lora/rng.ts, xoshiro128**).
// Deterministic across platforms: integer arithmetic and exact float64 products only.

import type { Rng } from "../lora/rng.js";
import { checkResultSize } from "../shape.js";
import { badArgument, requireInteger, requireRng } from "./check.js";

/**
 * Derives an independent seed for a named purpose from a base seed (FNV-1a over the name, mixed with the seed).
 * @throws {ArgumentError} seed not a finite number (NaN would silently act as 0), purpose not a string
 */
export function deriveSeed(seed: number, purpose: string): number {
  if (typeof seed !== "number" || !Number.isFinite(seed))
    throw badArgument("deriveSeed", "seed", seed, "a finite number");
  if (typeof purpose !== "string") throw badArgument("deriveSeed", "purpose", purpose, "a string");
  let h = (0x811c9dc5 ^ (Math.trunc(seed) >>> 0)) >>> 0;
  for (let i = 0; i < purpose.length; i++) h = Math.imul(h ^ purpose.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * A uniformly random permutation of 0 .. n−1 (Fisher–Yates), drawn from rng.
 * @throws {ArgumentError} n not an integer ≥ 0, rng not an Rng ("invalid_argument")
 */
export function permutation(n: number, rng: Rng): Uint32Array {
  requireInteger("permutation", "n", n, 0);
  requireRng("permutation", "rng", rng);
  checkResultSize("permutation", "the permutation", [n]);
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

// Random float64 forward-pass cases for the browser parity test (fast-check, fixed seed), and what the library
// computes for them in Node: nested arrays, Float64Array views, rsLoRA and the full explanation.

import fc from "fast-check";
import { explainLoraForward, loraForward } from "../../src/index.js";
import { SEED } from "../helpers/seed.js";

type Nested = number[][];
export interface Case {
  x: Nested;
  W: Nested;
  B: Nested;
  A: Nested;
  alpha: number;
}

const value = fc.double({ min: -8, max: 8, noNaN: true, noDefaultInfinity: true });
const matrix = (rows: number, cols: number) =>
  fc.array(fc.array(value, { minLength: cols, maxLength: cols }), { minLength: rows, maxLength: rows });
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    n: fc.integer({ min: 0, max: 5 }),
    dIn: fc.integer({ min: 1, max: 9 }),
    dOut: fc.integer({ min: 1, max: 9 }),
    r: fc.integer({ min: 1, max: 4 }),
  })
  .chain(({ n, dIn, dOut, r }) =>
    fc.record({ x: matrix(n, dIn), W: matrix(dIn, dOut), B: matrix(dIn, r), A: matrix(r, dOut), alpha: value }),
  );
export const CASES: Case[] = fc.sample(caseArb, { seed: SEED, numRuns: 24 });

const view = (m: Nested, cols: number) => ({ data: Float64Array.from(m.flat()), rows: m.length, cols });

/** What the page computes for each case, computed here by the library in Node. */
export function inNode(c: Case) {
  const dIn = c.W.length;
  const dOut = c.W[0]!.length;
  const r = c.A.length;
  const typed = loraForward(view(c.x, dIn), view(c.W, dOut), view(c.B, r), view(c.A, dOut), c.alpha);
  return {
    nested: loraForward(c.x, c.W, c.B, c.A, c.alpha),
    typed: Array.from(typed.data),
    rslora: loraForward(c.x, c.W, c.B, c.A, c.alpha, { scaling: "rslora" }),
    explanation: explainLoraForward(c.x, c.W, c.B, c.A, c.alpha),
  };
}

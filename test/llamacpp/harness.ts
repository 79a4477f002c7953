// llama.cpp as the judge: loads node-llama-cpp from test/llamacpp/node_modules (installed with
// `npm ci --omit=optional --prefix test/llamacpp`, CPU binary only), evaluates token ids with and without a LoRA
// adapter and returns llama.cpp's next-token distribution at every position.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "../gguf/helpers.js";

const ENTRY = join(REPO_ROOT, "test", "llamacpp", "node_modules", "node-llama-cpp", "dist", "index.js");

/** Why the llama.cpp tests cannot run here, or null when node-llama-cpp is installed. */
export const LLAMACPP_MISSING: string | null = existsSync(ENTRY)
  ? null
  : "node-llama-cpp is not installed; run `npm ci --omit=optional --prefix test/llamacpp` (CI does)";

// biome-ignore lint/suspicious/noExplicitAny: node-llama-cpp is an optional test-only package without types here
type Any = any;
let llamaPromise: Promise<Any> | null = null;

async function llama(): Promise<Any> {
  llamaPromise ??= import(pathToFileURL(ENTRY).href).then((m: Any) =>
    m.getLlama({ gpu: false, build: "never", logLevel: "error", progressLogs: false }),
  );
  return llamaPromise;
}

/**
 * llama.cpp's next-token probabilities after each prefix of `tokens`: row i is the distribution over the
 * vocabulary after tokens[0..i], as a Float64Array of length `vocab`.
 */
export async function nextTokenProbabilities(
  modelPath: string,
  tokens: readonly number[],
  vocab: number,
  loraPath?: string,
): Promise<Float64Array[]> {
  const l = await llama();
  const model = await l.loadModel({ modelPath });
  try {
    const context = await model.createContext({
      contextSize: 64,
      batchSize: 64,
      sequences: 1,
      ...(loraPath ? { lora: { adapters: [{ filePath: loraPath, scale: 1 }] } } : {}),
    });
    try {
      const seq = context.getSequence();
      const input = tokens.map((t) => [t, { generateNext: { probabilities: true } }]);
      const out: Any[] = await seq.controlledEvaluate(input);
      return tokens.map((_, i) => {
        const p = new Float64Array(vocab);
        for (const [tok, prob] of out[i].next.probabilities as Map<number, number>) p[tok] = prob;
        return p;
      });
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** log-softmax of one row of logits, in float64. */
export function logSoftmax(logits: Float32Array, offset: number, vocab: number): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < vocab; j++) max = Math.max(max, logits[offset + j]!);
  let sum = 0;
  for (let j = 0; j < vocab; j++) sum += Math.exp(logits[offset + j]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(vocab);
  for (let j = 0; j < vocab; j++) out[j] = logits[offset + j]! - lse;
  return out;
}

/** max over positions and tokens of |log p − log q|. */
export function maxLogProbGap(p: Float64Array[], logQ: Float64Array[]): number {
  let gap = 0;
  p.forEach((row, i) => {
    for (let j = 0; j < row.length; j++) gap = Math.max(gap, Math.abs(Math.log(row[j]!) - logQ[i]![j]!));
  });
  return gap;
}

/** llama.cpp's tokenization of each text (no special tokens added). */
export async function llamaTokenize(modelPath: string, texts: readonly string[]): Promise<number[][]> {
  const l = await llama();
  const model = await l.loadModel({ modelPath });
  try {
    return texts.map((t) => [...model.tokenize(t, false)] as number[]);
  } finally {
    await model.dispose();
  }
}

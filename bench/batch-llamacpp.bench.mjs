// How much batching sequences buys on this machine, for lorakit and for llama.cpp (node-llama-cpp, CPU) on the same
// model: the GPT-2-small-shaped random model of bench/model.bench.mjs converted to one GGUF F32 file by lorakit, loaded
// by both. Each runtime decodes 1 sequence, then N sequences at once (N distinct prompts, one forward / one llama.cpp
// batch per step), greedy; throughput is all generated tokens over the wall time, prefill included, for both alike.
// The N ÷ 1 ratio is what issue 15's "8 streams ≥ 4× one stream" asks of lorakit's runtime (the server adds HTTP and
// sampling); llama.cpp's own ratio on the same machine says what native x86 SIMD makes of the same arithmetic.
// Checks first that lorakit's batched rows equal their solo runs. Skips when node-llama-cpp is not installed.
// Not a test: `npm run build` first, then
//   node bench/batch-llamacpp.bench.mjs [--sequences 8] [--tokens 64] [--prompt 16] [--reps 3] [--threads 2]

import { existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { configureKernels, kernelInfo } from "../dist/src/index.js";
import { convertModelToGguf, loadModelDir } from "../dist/src/node/index.js";
import { PRESETS } from "../scripts/random-model.mjs";
import { arg, ensureRandomModel } from "./common.mjs";

const N = Number(arg("sequences", 8));
const TOKENS = Number(arg("tokens", 64));
const PROMPT = Number(arg("prompt", 16));
const REPS = Number(arg("reps", 3));
const THREADS = Number(arg("threads", 2));

const ENTRY = fileURLToPath(new URL("../test/llamacpp/node_modules/node-llama-cpp/dist/index.js", import.meta.url));
if (!existsSync(ENTRY)) {
  process.stdout.write("skipped: node-llama-cpp is not installed (npm ci --omit=optional --prefix test/llamacpp)\n");
  process.exit(0);
}

const preset = "gpt2-small";
const spec = PRESETS[preset];
const dir = ensureRandomModel(preset); // written once, by a child process
const gguf = join(dir, "model-f32.gguf");
if (!existsSync(gguf)) await convertModelToGguf(dir, gguf, { dtype: "F32" });
const prompt = (k) => Array.from({ length: PROMPT }, (_, i) => (17 * i + 31 * k + 5) % spec.vocab);
const argmax = (l) => {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
  return best;
};

// ---- lorakit: n sequences in one forward per step ----
configureKernels({ threads: THREADS });
const { model } = await loadModelDir(gguf);
function lorakitRun(n) {
  const t0 = performance.now();
  const caches = Array.from({ length: n }, () => model.createCache(PROMPT + TOKENS + 1));
  let logits = model.forward(caches.map((cache, k) => ({ ids: prompt(k), cache })));
  const out = Array.from({ length: n }, () => []);
  for (let t = 0; t < TOKENS; t++) {
    const next = logits.map(argmax);
    for (let k = 0; k < n; k++) out[k].push(next[k]);
    if (t + 1 < TOKENS) logits = model.forward(caches.map((cache, k) => ({ ids: [next[k]], cache })));
  }
  return { ms: performance.now() - t0, out };
}
{
  const batch = lorakitRun(Math.min(N, 3)).out;
  batch.forEach((ids, k) => {
    const cache = model.createCache(PROMPT + TOKENS + 1);
    let [l] = model.forward([{ ids: prompt(k), cache }]);
    for (let t = 0; t < TOKENS; t++) {
      if (argmax(l) !== ids[t]) throw new Error(`lorakit: sequence ${k} of the batch differs from its solo run`);
      if (t + 1 < TOKENS) [l] = model.forward([{ ids: [ids[t]], cache }]);
    }
  });
}

// ---- llama.cpp: n sequences of one context, evaluated concurrently (node-llama-cpp batches them per step) ----
const { getLlama } = await import(pathToFileURL(ENTRY).href);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error", progressLogs: false });
const lmodel = await llama.loadModel({ modelPath: gguf });
const context = await lmodel.createContext({
  contextSize: N * (PROMPT + TOKENS + 16),
  batchSize: Math.max(64, N * PROMPT),
  sequences: N,
  threads: THREADS,
});
const seqs = Array.from({ length: N }, () => context.getSequence());
async function llamaRun(n) {
  for (const s of seqs) await s.clearHistory();
  const t0 = performance.now();
  await Promise.all(
    seqs.slice(0, n).map(async (s, k) => {
      let got = 0;
      for await (const _token of s.evaluate(prompt(k), { temperature: 0 })) if (++got >= TOKENS) break;
    }),
  );
  return { ms: performance.now() - t0 };
}

const runs = {
  "lorakit 1": () => lorakitRun(1),
  [`lorakit ${N}`]: () => lorakitRun(N),
  "llama.cpp 1": () => llamaRun(1),
  [`llama.cpp ${N}`]: () => llamaRun(N),
};
const times = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
for (let rep = 0; rep < REPS; rep++) for (const [k, f] of Object.entries(runs)) times[k].push((await f()).ms);
await context.dispose();
await lmodel.dispose();
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const tps = (k, n) => (1000 * n * TOKENS) / median(times[k]);
const info = kernelInfo();
const out = [
  `model: ${preset} shape, ${(model.parameterCount / 1e6).toFixed(1)}M weights, one GGUF F32 file written by lorakit, loaded by both`,
  `lorakit kernels: ${info.backend}, ${info.threads} thread(s); llama.cpp (node-llama-cpp, CPU): ${THREADS} thread(s)`,
  `prompt ${PROMPT} tokens, ${TOKENS} greedy tokens per sequence, prefill included, median of ${REPS} interleaved runs`,
  "",
  `| runtime | 1 sequence: tokens/s | ${N} sequences: tokens/s | ${N} ÷ 1 |`,
  "| --- | ---: | ---: | ---: |",
];
for (const r of ["lorakit", "llama.cpp"]) {
  const one = tps(`${r} 1`, 1);
  const many = tps(`${r} ${N}`, N);
  out.push(`| ${r} | ${one.toFixed(1)} | ${many.toFixed(1)} | ${(many / one).toFixed(2)}× |`);
}
process.stdout.write(`${out.join("\n")}\n`);
process.exit(0);

// lorakit's runtime against llama.cpp (node-llama-cpp, CPU) on the same model: the GPT-2-small-shaped random model of
// bench/model.bench.mjs (124M parameters, written once by scripts/random-model.mjs), converted to a GGUF base by
// lorakit (F32, or every matrix Q8_0 / Q4_0 with --dtype); both load that one GGUF file and decode greedily, single sequence, the same thread count. Reports each
// one's decode tokens/s and lorakit's as a ratio of llama.cpp's, runs interleaved, medians (the machine may be shared).
// Skips with a message when node-llama-cpp is not installed (`npm ci --omit=optional --prefix test/llamacpp`).
// Not a test: `npm run build` first, then `node bench/model-llamacpp.bench.mjs [--tokens 32] [--prompt 8] [--reps 3]
// [--threads 1] [--dtype F32|Q8_0|Q4_0] [--activations q8_0]` (the last: lorakit's opt-in llama.cpp arithmetic for
// quantized decode, configureKernels({ decodeActivations: "q8_0" }), docs/quant.md).

import { existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { configureKernels, kernelInfo } from "../dist/src/index.js";
import { convertModelToGguf, loadModelDir } from "../dist/src/node/index.js";
import { PRESETS } from "../scripts/random-model.mjs";
import { arg, ensureRandomModel } from "./common.mjs";

const TOKENS = Number(arg("tokens", 32));
const PROMPT = Number(arg("prompt", 8));
const REPS = Number(arg("reps", 3));
const THREADS = Number(arg("threads", 1));
const DTYPE = String(arg("dtype", "F32"));
if (!["F32", "Q8_0", "Q4_0"].includes(DTYPE)) throw new Error(`--dtype ${DTYPE}: expected F32, Q8_0 or Q4_0`);

const ENTRY = fileURLToPath(new URL("../test/llamacpp/node_modules/node-llama-cpp/dist/index.js", import.meta.url));
if (!existsSync(ENTRY)) {
  process.stdout.write(
    "skipped: node-llama-cpp is not installed (npm ci --omit=optional --prefix test/llamacpp installs it)\n",
  );
  process.exit(0);
}

const preset = "gpt2-small";
const spec = PRESETS[preset];
const dir = ensureRandomModel(preset); // written once, by a child process
const gguf = join(dir, `model-${DTYPE.toLowerCase()}.gguf`);
if (!existsSync(gguf)) await convertModelToGguf(dir, gguf, { dtype: DTYPE });

const prompt = Array.from({ length: PROMPT }, (_, i) => (17 * i + 5) % spec.vocab);

// ---- lorakit: greedy decode over the cache ----
const ACTIVATIONS = arg("activations", undefined);
configureKernels({ threads: THREADS, ...(ACTIVATIONS ? { decodeActivations: ACTIVATIONS } : {}) });
const { model } = await loadModelDir(gguf);
const argmax = (l) => {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
  return best;
};
function lorakitDecode() {
  const cache = model.createCache(PROMPT + TOKENS + 1);
  let [logits] = model.forward([{ ids: prompt, cache }]);
  const t0 = performance.now();
  for (let t = 0; t < TOKENS; t++) [logits] = model.forward([{ ids: [argmax(logits)], cache }]);
  return (performance.now() - t0) / TOKENS;
}

// ---- llama.cpp: greedy decode with sequence.evaluate; the first token (after the prompt's prefill) is not timed ----
const { getLlama } = await import(pathToFileURL(ENTRY).href);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error", progressLogs: false });
const lmodel = await llama.loadModel({ modelPath: gguf });
const context = await lmodel.createContext({ contextSize: 128, batchSize: 64, sequences: 1, threads: THREADS });
const seq = context.getSequence();
async function llamaDecode() {
  await seq.clearHistory();
  let n = 0;
  let t0 = 0;
  for await (const _token of seq.evaluate(prompt, { temperature: 0 })) {
    if (n === 0) t0 = performance.now();
    if (++n > TOKENS) break;
  }
  return (performance.now() - t0) / TOKENS;
}

const times = { lorakit: [], llamacpp: [] };
for (let rep = 0; rep < REPS; rep++) {
  times.lorakit.push(lorakitDecode());
  times.llamacpp.push(await llamaDecode());
}
await context.dispose();
await lmodel.dispose();
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const ms = { lorakit: median(times.lorakit), llamacpp: median(times.llamacpp) };
const info = kernelInfo();
const out = [
  `model: ${preset} shape, ${(model.parameterCount / 1e6).toFixed(1)}M weights, one GGUF ${DTYPE} file written by lorakit convert, loaded by both`,
  `lorakit kernels: ${info.backend}, ${info.threads} thread(s)${ACTIVATIONS ? `, decodeActivations ${ACTIVATIONS}` : ""}; llama.cpp (node-llama-cpp, CPU): ${THREADS} thread(s)`,
  `prompt ${PROMPT} tokens, ${TOKENS} timed greedy decode steps, single sequence, median of ${REPS} interleaved runs`,
  "",
  "| runtime | ms per token | tokens/s |",
  "| --- | ---: | ---: |",
  `| llama.cpp | ${ms.llamacpp.toFixed(1)} | ${(1000 / ms.llamacpp).toFixed(1)} |`,
  `| lorakit | ${ms.lorakit.toFixed(1)} | ${(1000 / ms.lorakit).toFixed(1)} |`,
  "",
  `lorakit tokens/s / llama.cpp tokens/s: ${(ms.llamacpp / ms.lorakit).toFixed(3)}×`,
];
process.stdout.write(`${out.join("\n")}\n`);
process.exit(0);

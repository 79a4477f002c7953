// The transformer runtime on a GPT-2-small-shaped model with random weights (124M parameters; the folder is written
// once to the temporary directory by scripts/random-model.mjs) and r = 16 adapters on q/k/v/o (GPT-2's attn.c_attn
// and attn.c_proj). Measures single-sequence decode tokens/s with no adapter, one unmerged adapter and one merged
// adapter; a batch of 8 sequences each on a different adapter against 8 on one adapter and against one sequence;
// peak memory against the weights' size. Checks first that the batched rows equal their solo runs. Not a test:
// `npm run build` first, then `node bench/model.bench.mjs [--tokens 16] [--prompt 8] [--reps 3] [--threads N]`.

import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { configureKernels, kernelInfo } from "../dist/src/index.js";
import { attachAdapterDir, loadModelDir } from "../dist/src/node/index.js";
import { PRESETS } from "../scripts/random-model.mjs";
import { arg, ensureRandomModel } from "./common.mjs";

const TOKENS = Number(arg("tokens", 16));
const PROMPT = Number(arg("prompt", 8));
const threads = arg("threads", undefined);
if (threads !== undefined) configureKernels({ threads: Number(threads) });
const preset = "gpt2-small";
const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;

const spec = PRESETS[preset];
const dir = ensureRandomModel(preset); // written once, by a child process
const t0 = performance.now();
const { model } = await loadModelDir(dir);
const loadMs = performance.now() - t0;
const weightBytes = model.parameterCount * 4;
const adapters = [];
for (let i = 0; i < 8; i++) {
  await attachAdapterDir(model, `a${i}`, join(dir, `adapter-${i}`));
  adapters.push(`a${i}`);
}

const prompt = (k) => Array.from({ length: PROMPT }, (_, i) => (17 * i + 31 * k + 5) % spec.vocab);

// Prefills each sequence, then times TOKENS decode steps of the whole batch; returns tokens/s and ms per step.
function decode(adapterOf, n) {
  const steps = Array.from({ length: n }, (_, k) => ({
    ids: prompt(k),
    cache: model.createCache(PROMPT + TOKENS),
    adapter: adapterOf(k),
  }));
  model.forward(steps);
  const t0 = performance.now();
  for (let t = 0; t < TOKENS; t++) {
    model.forward(steps.map((s, k) => ({ ...s, ids: [(t * 7 + k) % spec.vocab] })));
  }
  const ms = (performance.now() - t0) / TOKENS;
  return { tps: (1000 * n) / ms, ms };
}

// correctness first: rows of a mixed batch equal solo runs
{
  const steps = adapters.slice(0, 3).map((a, k) => ({ ids: prompt(k), cache: model.createCache(), adapter: a }));
  const batch = model.forward(steps);
  steps.forEach((s, k) => {
    const solo = model.forward([{ ids: s.ids, cache: model.createCache(), adapter: s.adapter }])[0];
    if (!solo.every((v, i) => Object.is(v, batch[k][i])))
      throw new Error(`row ${k} of the mixed batch differs from its solo run`);
  });
}

const info = kernelInfo();
const REPS = Number(arg("reps", 3));
const runs = {
  base: () => decode(() => null, 1),
  one: () => decode(() => "a0", 1),
  merged: () => {
    model.mergeAdapter("a0");
    try {
      return decode(() => "a0", 1);
    } finally {
      model.unmergeAdapter();
    }
  },
  same8: () => decode(() => "a0", 8),
  mixed8: () => decode((k) => adapters[k], 8),
};
// interleaved repetitions, median time per step (the machine may be shared)
const times = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
for (let rep = 0; rep < REPS; rep++) for (const [k, f] of Object.entries(runs)) times[k].push(f().ms);
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const res = (k, n) => {
  const ms = median(times[k]);
  return { ms, tps: (1000 * n) / ms };
};
const base = res("base", 1);
const one = res("one", 1);
const merged = res("merged", 1);
const same8 = res("same8", 8);
const mixed8 = res("mixed8", 8);
const rows = [
  ["1 sequence, no adapter", base],
  ["1 sequence, 1 unmerged adapter", one],
  ["1 sequence, 1 merged adapter", merged],
  ["8 sequences, 1 adapter", same8],
  ["8 sequences, 8 different adapters", mixed8],
];

const out = [];
out.push(
  `model: ${preset} shape, ${(model.parameterCount / 1e6).toFixed(1)}M float32 weights (${mib(weightBytes)}); 8 adapters r = 16 on attn.c_attn + attn.c_proj`,
);
out.push(`loadModelDir (tensors read one at a time into kernel memory): ${(loadMs / 1000).toFixed(1)} s`);
out.push(
  `kernels: ${info.backend}, ${info.threads} thread(s); prompt ${PROMPT} tokens, ${TOKENS} timed decode steps, median of ${REPS} interleaved runs`,
);
out.push("");
out.push("| run | ms per step | tokens/s |");
out.push("| --- | ---: | ---: |");
for (const [name, r] of rows) out.push(`| ${name} | ${r.ms.toFixed(1)} | ${r.tps.toFixed(1)} |`);
out.push("");
out.push(`unmerged adapter / no adapter, time per token: ${(one.ms / base.ms).toFixed(3)}× (goal ≤ 1.15×)`);
out.push(`merged adapter / no adapter, time per token: ${(merged.ms / base.ms).toFixed(3)}×`);
out.push(`8 mixed / 8 on one adapter, throughput: ${(mixed8.tps / same8.tps).toFixed(3)}× (goal ≥ 0.8×)`);
out.push(`8 mixed / 1 sequence, tokens/s: ${(mixed8.tps / base.tps).toFixed(2)}× (goal ≥ 4×)`);
const peak = process.resourceUsage().maxRSS * 1024;
out.push(
  `peak RSS ${mib(peak)} against ${mib(weightBytes)} of float32 weights (${(peak / weightBytes).toFixed(2)}×; Node itself ~50 MiB)`,
);
process.stdout.write(`${out.join("\n")}\n`);

// `lorakit serve` under concurrent streams: throughput (generated tokens/s over the whole run, prefill included) and
// per-token latency (median gap between a stream's token chunks) at 1, 2, 4, 8 and 16 concurrent streaming clients,
// all on one adapter and each on its own adapter. A GPT-2-small-shaped model with random weights (124M parameters,
// scripts/random-model.mjs, made in memory) and 16 adapters r = 16 on attn.c_attn + attn.c_proj, served over HTTP on
// 127.0.0.1 by the real server. Checks first that a mixed-adapter greedy completion under load equals its solo run.
// Not a test: `npm run build` first, then
//   node bench/serve.bench.mjs [--tokens 32] [--prompt 16] [--preset gpt2-small] [--threads N]

import { performance } from "node:perf_hooks";
import { configureKernels, kernelInfo, loadPeftAdapter, parseSafetensors } from "../dist/src/index.js";
import { CausalLM } from "../dist/src/model/index.js";
import { startServer } from "../dist/src/node/index.js";
import { ModelEngine } from "../dist/src/serve/model-engine.js";
import { PRESETS, randomModel, randomPeftAdapter, toSafetensors } from "../scripts/random-model.mjs";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const TOKENS = Number(arg("tokens", 32));
const PROMPT = Number(arg("prompt", 16));
const preset = arg("preset", "gpt2-small");
const threads = arg("threads", undefined);
if (threads !== undefined) configureKernels({ threads: Number(threads) });
const CONCURRENCY = [1, 2, 4, 8, 16];

const spec = { type: "gpt2", ...PRESETS[preset], seed: 1 };
const rm = randomModel(spec);
const adapterFiles = Array.from({ length: 16 }, (_, i) =>
  randomPeftAdapter(rm, ["attn.c_attn", "attn.c_proj"], 16, 100 + i),
);
const model = new CausalLM(rm.config, parseSafetensors(toSafetensors(rm.tensors)));
rm.tensors.clear();
const adapters = adapterFiles.map((a, i) => {
  model.attachAdapter(`a${i}`, loadPeftAdapter({ config: a.config, weights: toSafetensors(a.tensors) }));
  return `a${i}`;
});
const engine = new ModelEngine({ model, tokenizer: null, readAdapter: () => Promise.reject(new Error("off")) });
const server = await startServer({ engine, modelName: "base", port: 0, maxBatch: 16, maxQueue: 64 });

const prompt = (k) => Array.from({ length: PROMPT }, (_, i) => (17 * i + 31 * k + 5) % spec.vocab);

// One streamed completion; returns its token ids and the arrival time of each token chunk.
async function stream(model, k, maxTokens = TOKENS) {
  const res = await fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: prompt(k), max_tokens: maxTokens, temperature: 0, stream: true }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const ids = [];
  const times = [];
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const data = buffer.slice(6, end);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      if (data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const got = chunk.choices[0]?.token_ids ?? [];
      if (got.length > 0) {
        ids.push(...got);
        times.push(performance.now());
      }
    }
  }
  return { ids, times };
}

// correctness first: a mixed-adapter greedy completion under load equals the same request alone
{
  const solo = await stream("a3", 3, 8);
  const loaded = await Promise.all(adapters.slice(0, 8).map((a, k) => stream(a, k, 8)));
  if (JSON.stringify(loaded[3].ids) !== JSON.stringify(solo.ids))
    throw new Error("a completion under load differs from its solo run");
}

async function run(n, mixed) {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, k) => stream(mixed ? adapters[k] : "a0", k)));
  const seconds = (performance.now() - t0) / 1000;
  const tokens = results.reduce((s, r) => s + r.ids.length, 0);
  const gaps = results.flatMap((r) => r.times.slice(1).map((t, i) => t - r.times[i]));
  gaps.sort((a, b) => a - b);
  return { tps: tokens / seconds, latency: gaps[Math.floor(gaps.length / 2)] ?? Number.NaN, tokens };
}

const rows = [];
for (const n of CONCURRENCY) {
  const same = await run(n, false);
  const mixed = await run(n, true);
  rows.push({ n, same, mixed });
}
await server.close(0);

const info = kernelInfo();
const one = rows[0].same.tps;
const out = [];
out.push(
  `model: ${preset} shape, ${(model.parameterCount / 1e6).toFixed(1)}M float32 weights; 16 adapters r = 16 on attn.c_attn + attn.c_proj; kernels: ${info.backend}, ${info.threads} thread(s)`,
);
out.push(`each stream: prompt ${PROMPT} tokens, ${TOKENS} generated (greedy), streamed over HTTP on 127.0.0.1`);
out.push("");
out.push(
  "| streams | one adapter: tokens/s | ms/token | each its own adapter: tokens/s | ms/token | mixed / one | × 1 stream |",
);
out.push("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const { n, same, mixed } of rows)
  out.push(
    `| ${n} | ${same.tps.toFixed(1)} | ${same.latency.toFixed(1)} | ${mixed.tps.toFixed(1)} | ${mixed.latency.toFixed(1)} | ${(mixed.tps / same.tps).toFixed(2)} | ${(mixed.tps / one).toFixed(2)} |`,
  );
const eight = rows.find((r) => r.n === 8);
out.push("");
out.push(`8 streams / 1 stream, throughput (one adapter): ${(eight.same.tps / one).toFixed(2)}× (goal ≥ 4×)`);
out.push(
  `8 streams each on its own adapter / 8 on one: ${(eight.mixed.tps / eight.same.tps).toFixed(2)}× (goal ≥ 0.8×)`,
);
process.stdout.write(`${out.join("\n")}\n`);

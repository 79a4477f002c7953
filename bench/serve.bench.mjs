// `lorakit serve` under concurrent streams: throughput (generated tokens/s over the whole run, prefill included) and
// per-token latency (median gap between a stream's token chunks) at 1, 2, 4, 8 and 16 concurrent streaming clients,
// all on one adapter and each on its own adapter. A GPT-2-small-shaped model with random weights (124M parameters,
// scripts/random-model.mjs, made in memory) and 16 adapters r = 16 on attn.c_attn + attn.c_proj, served over HTTP on
// 127.0.0.1 by the real server to clients in a child process (bench/serve-client.mjs). Checks first that a
// mixed-adapter greedy completion under load equals its solo run.
// Not a test: `npm run build` first, then
//   node bench/serve.bench.mjs [--tokens 32] [--prompt 16] [--preset gpt2-small] [--threads N] [--streams 1,2,4,8,16]
//   [--temperature 0] [--reps 1] (passes over every concurrency, interleaved; each cell is the median pass by throughput)

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { configureKernels, kernelInfo, loadPeftAdapter, parseSafetensors } from "../dist/src/index.js";
import { CausalLM } from "../dist/src/model/index.js";
import { startServer } from "../dist/src/node/index.js";
import { ModelEngine } from "../dist/src/serve/model-engine.js";
import { PRESETS, randomModel, randomPeftAdapter, toSafetensors } from "../scripts/random-model.mjs";
import { arg } from "./common.mjs";

const TOKENS = Number(arg("tokens", 32));
const PROMPT = Number(arg("prompt", 16));
const preset = arg("preset", "gpt2-small");
const threads = arg("threads", undefined);
if (threads !== undefined) configureKernels({ threads: Number(threads) });
const CONCURRENCY = String(arg("streams", "1,2,4,8,16")).split(",").map(Number);
// 0: greedy (the default); > 0: sampled with top_p = 1 and a seed per stream (the OpenAI API's default is 1)
const TEMPERATURE = Number(arg("temperature", 0));

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

// The clients run in a child process (bench/serve-client.mjs): one command per round, answered with every
// stream's token ids and chunk arrival times.
const client = spawn(process.execPath, [fileURLToPath(new URL("./serve-client.mjs", import.meta.url))], {
  stdio: ["pipe", "pipe", "inherit"],
});
const replies = createInterface({ input: client.stdout })[Symbol.asyncIterator]();
async function round(streams) {
  client.stdin.write(`${JSON.stringify({ url: server.url, streams })}\n`);
  const { value, done } = await replies.next();
  if (done) throw new Error("the client process ended");
  const reply = JSON.parse(value);
  if (reply.error) throw new Error(reply.error);
  return reply;
}
const streamOf = (model, k, maxTokens = TOKENS, temperature = TEMPERATURE) => ({
  model,
  prompt: prompt(k),
  maxTokens,
  temperature,
  seed: k,
});

// correctness first: a mixed-adapter greedy completion under load equals the same request alone
{
  const solo = (await round([streamOf("a3", 3, 8, 0)])).results[0];
  const loaded = (await round(adapters.slice(0, 8).map((a, k) => streamOf(a, k, 8, 0)))).results;
  if (JSON.stringify(loaded[3].ids) !== JSON.stringify(solo.ids))
    throw new Error("a completion under load differs from its solo run");
}

async function run(n, mixed) {
  const { seconds, results } = await round(
    Array.from({ length: n }, (_, k) => streamOf(mixed ? adapters[k] : "a0", k)),
  );
  const tokens = results.reduce((s, r) => s + r.ids.length, 0);
  const gaps = results.flatMap((r) => r.times.slice(1).map((t, i) => t - r.times[i]));
  gaps.sort((a, b) => a - b);
  return { tps: tokens / seconds, latency: gaps[Math.floor(gaps.length / 2)] ?? Number.NaN, tokens };
}

// REPS interleaved passes over every concurrency (the machine may be shared); each cell is the median pass
const REPS = Number(arg("reps", 1));
const passes = CONCURRENCY.map(() => ({ same: [], mixed: [] }));
for (let rep = 0; rep < REPS; rep++)
  for (const [i, n] of CONCURRENCY.entries()) {
    passes[i].same.push(await run(n, false));
    passes[i].mixed.push(await run(n, true));
  }
const median = (list) => [...list].sort((a, b) => a.tps - b.tps)[Math.floor(list.length / 2)];
const rows = CONCURRENCY.map((n, i) => ({ n, same: median(passes[i].same), mixed: median(passes[i].mixed) }));
client.stdin.end();
await server.close(0);

const info = kernelInfo();
const one = rows[0].same.tps;
const out = [];
out.push(
  `model: ${preset} shape, ${(model.parameterCount / 1e6).toFixed(1)}M float32 weights; 16 adapters r = 16 on attn.c_attn + attn.c_proj; kernels: ${info.backend}, ${info.threads} thread(s)`,
);
out.push(
  `each stream: prompt ${PROMPT} tokens, ${TOKENS} generated (${TEMPERATURE === 0 ? "greedy" : `temperature ${TEMPERATURE}, seeded`}), streamed over HTTP on 127.0.0.1 from a client process; median of ${REPS} interleaved passes`,
);
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

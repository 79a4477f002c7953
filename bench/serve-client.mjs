// The HTTP clients of bench/serve.bench.mjs, in a process of their own (as real clients are), so that parsing the
// server-sent events never runs on the server's thread. Reads one JSON command per line on stdin — { url, streams:
// [{ model, prompt, maxTokens, temperature, seed }] } — runs those streamed completions concurrently and writes one
// JSON line: { seconds, results: [{ ids, times }] } (times: arrival of each token chunk, ms).

import { createInterface } from "node:readline";

async function stream(url, { model, prompt, maxTokens, temperature = 0, seed = 0 }) {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature, seed, stream: true }),
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

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { url, streams } = JSON.parse(line);
  try {
    const t0 = performance.now();
    const results = await Promise.all(streams.map((s) => stream(url, s)));
    process.stdout.write(`${JSON.stringify({ seconds: (performance.now() - t0) / 1000, results })}\n`);
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ error: String(e?.message ?? e) })}\n`);
  }
}

// Shared pieces of the server tests: a real server on 127.0.0.1 port 0 over a FakeEngine, the official OpenAI
// client pointed at it, raw HTTP for what no client would send, and a solo greedy decoder as the oracle.

import { copyFileSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import OpenAI from "openai";
import { openModelEngine } from "../../src/node/serve/model.js";
import { type RunningServer, type ServeOptions, startServer } from "../../src/node/serve/server.js";
import type { ModelEngine } from "../../src/serve/model-engine.js";
import { goldenFile } from "../model/golden.js";
import { FakeEngine } from "./fake-engine.js";

export const ADAPTERS = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];

/** A server over a FakeEngine with ADAPTERS attached; close it with server.close(0). */
export async function startFake(
  options: Partial<ServeOptions> & { engine?: FakeEngine } = {},
): Promise<{ server: RunningServer; engine: FakeEngine; client: OpenAI }> {
  const engine = options.engine ?? new FakeEngine({ adapters: ADAPTERS });
  const server = await startServer({ modelName: "base", port: 0, ...options, engine });
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: options.apiKey ?? "none", maxRetries: 0 });
  return { server, engine, client };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => { error: { message: string; type: string; param: string | null; code: string } };
}

/** One HTTP request with exactly these bytes; resolves with the whole answer. */
export function raw(
  url: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** POST JSON. */
export function postJson(url: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  return raw(url, "POST", path, JSON.stringify(body), { "content-type": "application/json", ...headers });
}

/**
 * The oracle: the completion a fresh FakeEngine gives one sequence alone, greedy, step by step (prompt first, then
 * one token at a time), stopping at end-of-sequence or maxTokens. Independent of the scheduler.
 */
export async function soloGreedy(adapter: string | null, prompt: number[], maxTokens: number): Promise<number[]> {
  // adapters are salted by name, so a fresh engine with the one adapter decodes as the server's does
  const engine = new FakeEngine({ adapters: adapter === null ? [] : [adapter] });
  const out: number[] = [];
  let feed = prompt;
  while (out.length < maxTokens) {
    const logits = await engine.step([{ seq: 1, adapter, tokens: feed }]);
    let best = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v]! > logits[best]!) best = v;
    if (engine.info.eosTokenIds.includes(best)) break;
    out.push(best);
    feed = [best];
  }
  return out;
}

/** Polls `cond` every few ms until it holds (a wait for I/O to arrive, not a timing; gives up after `turns`). */
export async function until(cond: () => boolean, turns = 5000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error("condition never held");
}

/** Codes of ASCII text, as the FakeEngine tokenizes it. */
export const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

/** A byte-level BPE tokenizer.json whose 256 ids are the 256 bytes (GPT-2's byte → printable character table). */
function byteLevelTokenizer(): object {
  const bs: number[] = [];
  for (const [a, b] of [
    [33, 126],
    [161, 172],
    [174, 255],
  ] as const)
    for (let i = a; i <= b; i++) bs.push(i);
  const cs = [...bs];
  let extra = 0;
  for (let b = 0; b < 256; b++)
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + extra++);
    }
  const vocab: Record<string, number> = {};
  bs.forEach((b, i) => {
    vocab[String.fromCharCode(cs[i]!)] = b;
  });
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null,
    decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
}

/** Whether the optional @huggingface/tokenizers package is installed. */
export function hasTokenizers(): boolean {
  try {
    createRequire(import.meta.url).resolve("@huggingface/tokenizers");
    return true;
  } catch {
    return false;
  }
}

/**
 * The real runtime with text: the PEFT golden llama (vocab 256) in folder `dir` (config copied, weights linked) with
 * byteLevelTokenizer's tokenizer.json, and its "basic" adapter attached. Needs the golden set and hasTokenizers().
 */
export async function goldenTextEngine(dir: string): Promise<ModelEngine> {
  copyFileSync(goldenFile("base", "llama", "config.json"), join(dir, "config.json"));
  symlinkSync(goldenFile("base", "llama", "model.safetensors"), join(dir, "model.safetensors"));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(byteLevelTokenizer()));
  const { engine } = await openModelEngine(dir, { adapters: [["basic", goldenFile("peft-llama-basic", "adapter")]] });
  return engine;
}

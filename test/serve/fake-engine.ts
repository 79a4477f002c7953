// A deterministic Engine for server tests: a "model" whose logits at each position are a hash of the adapter and
// EVERY token the sequence has been fed (prompt and completion so far). A scheduler that mixed up rows, sequences,
// adapters, prefill and decode, or fed a token twice would change the text; a completion is a function of
// (adapter, prompt, sampling, seed) only, so the same request alone and under load must give the same tokens.
// Vocabulary: 128 ids = ASCII; the model writes 'a'..'z' and ' ', and id 0 (NUL) is end-of-sequence.
// It also checks the Engine contract (distinct rows, prompt first, one token after, adapter fixed, no use after
// release) and throws on a breach, so the scheduler is tested against it too.

import { AdapterFormatError } from "../../src/errors.js";
import type { Engine, EngineInfo, StepEntry } from "../../src/serve/engine.js";

const VOCAB = 128;
const EOS = 0;
const OUTPUT_IDS = [32, ...Array.from({ length: 26 }, (_, i) => 97 + i)];

function fnv(h: number, x: number): number {
  return Math.imul(h ^ x, 16777619) >>> 0;
}

function mix(h: number): number {
  let z = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
}

function saltOf(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = fnv(h, text.charCodeAt(i));
  return h;
}

interface SeqState {
  adapter: string | null;
  /** Running hash of every token fed so far. */
  hash: number;
  fed: number;
}

/** One step as the engine saw it. */
export interface StepRecord {
  rows: { seq: number; adapter: string | null; tokens: number }[];
}

export class FakeEngine implements Engine {
  readonly info: EngineInfo;
  readonly steps: StepRecord[] = [];
  readonly live = new Map<number, SeqState>();
  private readonly released = new Set<number>();
  private readonly salts = new Map<string, number>();
  /** While set, every step waits for it (tests hold the batch still with it). */
  gate: Promise<void> | null = null;
  /** Makes the next step throw (engine failure). */
  failNext: string | null = null;

  constructor(options: { contextLength?: number; hasTokenizer?: boolean; adapters?: string[] } = {}) {
    this.info = {
      vocabSize: VOCAB,
      contextLength: options.contextLength ?? 512,
      eosTokenIds: [EOS],
      hasTokenizer: options.hasTokenizer ?? true,
    };
    for (const name of options.adapters ?? []) this.salts.set(name, saltOf(name));
  }

  /** Holds every step until the returned function is called. */
  hold(): () => void {
    let release = () => {};
    this.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    return () => {
      this.gate = null;
      release();
    };
  }

  encode(text: string): number[] {
    return Array.from(text, (c) => (c.charCodeAt(0) < VOCAB ? c.charCodeAt(0) : 63));
  }

  decode(ids: readonly number[]): string {
    return String.fromCharCode(...ids);
  }

  async step(entries: readonly StepEntry[]): Promise<Float32Array> {
    if (this.gate) await this.gate;
    if (this.failNext) {
      const message = this.failNext;
      this.failNext = null;
      throw new Error(message);
    }
    const seen = new Set<number>();
    const out = new Float32Array(entries.length * VOCAB).fill(-100);
    entries.forEach((e, row) => {
      if (seen.has(e.seq)) throw new Error(`fake engine: sequence ${e.seq} twice in one step`);
      if (this.released.has(e.seq)) throw new Error(`fake engine: sequence ${e.seq} used after release`);
      seen.add(e.seq);
      const state = this.state(e);
      for (const t of e.tokens) state.hash = fnv(state.hash, t);
      state.fed += e.tokens.length;
      if (state.fed > this.info.contextLength) throw new Error(`fake engine: sequence ${e.seq} over the context`);
      for (const v of OUTPUT_IDS) out[row * VOCAB + v] = 8 * mix(fnv(state.hash, v));
      out[row * VOCAB + EOS] = 8 * mix(fnv(state.hash, EOS)) - 0.5;
    });
    this.steps.push({ rows: entries.map((e) => ({ seq: e.seq, adapter: e.adapter, tokens: e.tokens.length })) });
    return out;
  }

  private state(e: StepEntry): SeqState {
    const known = this.live.get(e.seq);
    if (known) {
      if (known.adapter !== e.adapter) throw new Error(`fake engine: sequence ${e.seq} changed adapter`);
      if (e.tokens.length !== 1)
        throw new Error(`fake engine: sequence ${e.seq} fed ${e.tokens.length} tokens after its prompt`);
      return known;
    }
    if (e.tokens.length === 0) throw new Error(`fake engine: sequence ${e.seq} has an empty prompt`);
    const salt = e.adapter === null ? 1 : this.salts.get(e.adapter);
    if (salt === undefined) throw new Error(`fake engine: adapter ${e.adapter} is not attached`);
    const state = { adapter: e.adapter, hash: salt, fed: 0 };
    this.live.set(e.seq, state);
    return state;
  }

  release(seq: number): void {
    if (this.live.delete(seq)) this.released.add(seq);
  }

  adapters(): string[] {
    return [...this.salts.keys()];
  }

  async attachAdapter(name: string, location: string): Promise<void> {
    if (location.endsWith("broken"))
      throw new AdapterFormatError("unsupported_format", "fake engine: the folder holds no adapter");
    this.salts.set(name, saltOf(name));
  }

  detachAdapter(name: string): void {
    for (const s of this.live.values())
      if (s.adapter === name) throw new Error(`fake engine: adapter ${name} detached while in use`);
    this.salts.delete(name);
  }
}

// Continuous batching: a plain loop over a bounded queue. Each turn admits waiting sequences while the batch has
// room, runs ONE engine step for every running sequence (prefill rows carry their prompt, decode rows one token,
// each row with its own adapter), samples each row with the sequence's own generator (the runtime's sampleToken, so
// a seed gives the tokens generate() gives), and retires the finished.
// A cancelled sequence (client gone, timeout) leaves the batch at once; its engine cache is released as soon as no
// step that includes it is in flight. Nothing here depends on which sequences share a step, so a sequence's tokens
// are the same alone or under load whenever the engine's rows are independent.

import { ServeError } from "../errors.js";
import { createRng, type Rng } from "../lora/rng.js";
import { sampleToken } from "../model/index.js";
import type { Engine, StepEntry } from "./engine.js";
import type { SamplingParams } from "./request.js";
import { TextStream } from "./text-stream.js";

/** What a sequence is asked to do. */
export interface SequenceSpec {
  adapter: string | null;
  promptIds: readonly number[];
  maxTokens: number;
  sampling: SamplingParams;
  seed: number;
  stop: readonly string[];
}

/** How a sequence ended. "stop": an end-of-sequence token or a stop string; "length": maxTokens reached. */
export type FinishReason = "stop" | "length";

/** A finished sequence. */
export interface SequenceResult {
  reason: FinishReason;
  /** Text held back for a possible stop string and released at the end ("" mostly); already part of `text`. */
  tail: string;
  /** The whole completion text (stop string excluded). */
  text: string;
  /** The generated ids (end-of-sequence token excluded; the tokens of a stop string included). */
  ids: readonly number[];
}

/** Receives a sequence's progress; called from the scheduler loop, must not throw. */
export interface SequenceListener {
  /** One generated token and the text it released (may be ""). */
  onToken(id: number, text: string): void;
  /** The sequence finished normally. */
  onFinish(result: SequenceResult): void;
  /** The sequence was cancelled or the engine failed; not called after onFinish. */
  onError(error: ServeError): void;
}

/** Limits of the scheduler. */
export interface SchedulerOptions {
  /** Most sequences in one step. */
  maxBatch: number;
  /** Most sequences waiting for a place in the batch; more are refused with "queue_full". */
  maxWaiting: number;
  /** Lets other work (I/O) run between steps; Node passes setImmediate. */
  yieldToEvents?: () => Promise<void>;
  /**
   * Awaited once when a request finds the loop idle, before its first step, so that the rest of a burst of requests
   * (sent together, arriving a few ms apart) joins that step instead of the next one (a dynamic-batching delay, as
   * Triton's max_queue_delay or Ray Serve's batch_wait_timeout). None: the first step starts at once.
   */
  batchWindow?: () => Promise<void>;
}

interface Sequence {
  id: number;
  spec: SequenceSpec;
  listener: SequenceListener;
  rng: Rng;
  ids: number[];
  text: TextStream;
  isStarted: boolean;
  isDone: boolean;
}

/** Counters for /health and tests. */
export interface SchedulerStats {
  running: number;
  waiting: number;
  steps: number;
  /** Sequences whose engine cache is still held (released after retirement). */
  cached: number;
}

/** Prompt ids decoded before the first new token (vLLM and TGI use 5 too). */
const PROMPT_CONTEXT = 5;

const defaultYield = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** The continuous-batching loop over one engine. */
export class Scheduler {
  private readonly waiting: Sequence[] = [];
  private readonly running = new Map<number, Sequence>();
  private readonly cached = new Set<number>();
  private readonly inFlight = new Set<number>();
  private readonly yieldToEvents: () => Promise<void>;
  private nextId = 1;
  private steps = 0;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly options: SchedulerOptions,
  ) {
    this.yieldToEvents = options.yieldToEvents ?? defaultYield;
  }

  /** Whether `count` more sequences fit now (at most maxBatch running plus maxWaiting waiting). */
  hasRoom(count: number): boolean {
    return this.running.size + this.waiting.length + count <= this.options.maxBatch + this.options.maxWaiting;
  }

  /** Queues a sequence; returns its id (for cancel). Call hasRoom first: this does not refuse. */
  submit(spec: SequenceSpec, listener: SequenceListener): number {
    const id = this.nextId++;
    const decode = this.engine.info.hasTokenizer ? (ids: readonly number[]) => this.engine.decode(ids) : null;
    this.waiting.push({
      id,
      spec,
      listener,
      rng: createRng(spec.seed),
      ids: [],
      text: new TextStream(decode, spec.stop, spec.promptIds.slice(-PROMPT_CONTEXT)),
      isStarted: false,
      isDone: false,
    });
    // the loop starts after the caller's synchronous code, so that a request's prompts join the same step
    this.loop ??= Promise.resolve()
      .then(() => this.run())
      .catch((e: unknown) => {
        // a listener threw: end every sequence rather than leave clients waiting
        const message = `completions: internal error in the scheduler: ${(e as Error).message}`;
        this.cancelAll(new ServeError("engine_failed", 500, message));
      })
      .finally(() => {
        this.loop = null;
      });
    return id;
  }

  /** Removes a sequence from the queue or the batch at once and reports `error` to its listener (if any). */
  cancel(id: number, error: ServeError | null): void {
    const at = this.waiting.findIndex((s) => s.id === id);
    const seq = at >= 0 ? this.waiting.splice(at, 1)[0] : this.running.get(id);
    if (!seq || seq.isDone) return;
    this.running.delete(id);
    this.retire(seq);
    if (error) seq.listener.onError(error);
  }

  /** Cancels everything, queued and running, with `error`. */
  cancelAll(error: ServeError): void {
    for (const seq of [...this.waiting, ...this.running.values()]) this.cancel(seq.id, error);
  }

  /** Resolves when no sequence is queued or running. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  stats(): SchedulerStats {
    return { running: this.running.size, waiting: this.waiting.length, steps: this.steps, cached: this.cached.size };
  }

  private async run(): Promise<void> {
    if (this.options.batchWindow) await this.options.batchWindow();
    while (this.waiting.length > 0 || this.running.size > 0) {
      while (this.running.size < this.options.maxBatch && this.waiting.length > 0) {
        const seq = this.waiting.shift()!;
        this.running.set(seq.id, seq);
      }
      await this.step([...this.running.values()]);
      await this.yieldToEvents();
    }
  }

  private async step(batch: Sequence[]): Promise<void> {
    const entries: StepEntry[] = batch.map((s) => ({
      seq: s.id,
      adapter: s.spec.adapter,
      tokens: s.isStarted ? [s.ids[s.ids.length - 1]!] : s.spec.promptIds,
    }));
    for (const s of batch) {
      this.inFlight.add(s.id);
      this.cached.add(s.id);
    }
    let logits: Float32Array;
    try {
      logits = await this.engine.step(entries);
    } catch (e) {
      this.endStep(batch);
      const message = `completions: the model failed on a step of ${batch.length} sequences: ${(e as Error).message}`;
      for (const s of batch) this.cancel(s.id, new ServeError("engine_failed", 500, message));
      return;
    }
    this.steps++;
    this.endStep(batch);
    const vocab = this.engine.info.vocabSize;
    batch.forEach((s, row) => {
      if (s.isDone) return;
      s.isStarted = true;
      this.accept(s, sampleToken(logits.subarray(row * vocab, (row + 1) * vocab), s.spec.sampling, s.rng));
    });
  }

  private endStep(batch: Sequence[]): void {
    for (const s of batch) {
      this.inFlight.delete(s.id);
      if (s.isDone) this.releaseCache(s.id);
    }
  }

  private accept(s: Sequence, token: number): void {
    const isEos = this.engine.info.eosTokenIds.includes(token);
    if (!isEos) {
      s.ids.push(token);
      s.listener.onToken(token, s.text.push(token));
    }
    const isFull = s.spec.promptIds.length + s.ids.length >= this.engine.info.contextLength;
    if (isEos || s.text.isStopped || s.ids.length >= s.spec.maxTokens || isFull) {
      const reason: FinishReason = isEos || s.text.isStopped ? "stop" : "length";
      const tail = s.text.finish();
      this.running.delete(s.id);
      this.retire(s);
      s.listener.onFinish({ reason, tail, text: s.text.text, ids: s.ids });
    }
  }

  private retire(s: Sequence): void {
    s.isDone = true;
    if (!this.inFlight.has(s.id)) this.releaseCache(s.id);
  }

  private releaseCache(id: number): void {
    if (this.cached.delete(id)) this.engine.release(id);
  }
}

// The model as the server sees it: a tokenizer, a batched forward over sequences that each carry their own adapter,
// and adapters attached and detached by name. The scheduler (scheduler.ts) is written against this interface only;
// model-engine.ts adapts lorakit's model runtime to it, tests use small deterministic engines.
//
// Sequence ids are chosen by the caller (the scheduler), unique while a sequence lives. A sequence's first step
// carries its whole prompt (prefill) and names its adapter; every later step carries the one token sampled last.
// The engine keeps each sequence's cache (KV, positions) until release(seq). Rows of one step are independent: a
// sequence's logits must not depend on which other sequences share the step (that is what makes a greedy completion
// the same under load as alone).

/** What the server needs to know about the loaded model. */
export interface EngineInfo {
  /** Logits per row. */
  vocabSize: number;
  /** Most tokens one sequence may hold, prompt and completion together. */
  contextLength: number;
  /** Tokens that end a completion (finish_reason "stop"); not part of the returned text or ids. */
  eosTokenIds: readonly number[];
  /** Whether encode/decode work; without a tokenizer prompts must be token ids and completions carry ids only. */
  hasTokenizer: boolean;
}

/** One row of a step: a sequence, its adapter (null = the base model) and the tokens to feed it. */
export interface StepEntry {
  seq: number;
  adapter: string | null;
  /** The whole prompt on the sequence's first step (length ≥ 1), then exactly one token. */
  tokens: readonly number[];
}

/** A base model with adapters, run one batched step at a time. */
export interface Engine {
  readonly info: EngineInfo;
  /** Text → token ids (the tokenizer's own special tokens, e.g. BOS, included as the model expects). */
  encode(text: string): number[];
  /** Token ids → text; a trailing incomplete UTF-8 sequence comes out as U+FFFD. */
  decode(ids: readonly number[]): string;
  /**
   * Runs one forward for all entries and returns the logits of each entry's last position, row-major
   * `[entries.length, vocabSize]`. Entries name distinct sequences.
   */
  step(entries: readonly StepEntry[]): Promise<Float32Array>;
  /** Frees a sequence's cache; unknown ids are ignored. */
  release(seq: number): void;
  /** Names of the attached adapters. */
  adapters(): string[];
  /** Attaches an adapter read from `location` (a folder path under Node) under `name`. */
  attachAdapter(name: string, location: string): Promise<void>;
  /** Detaches an adapter; no live sequence may use it (the server makes sure of that). */
  detachAdapter(name: string): void;
}

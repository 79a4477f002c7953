// The server without HTTP: model names, adapters in use, and completions turned into scheduler sequences.
// `model` names the base model or an attached adapter (vLLM's convention). Every sequence holds a use of its
// adapter from submission to its end, and an adapter with uses cannot be detached (409 "adapter_in_use"): an
// unload never waits and never cuts a running completion short. Transport (node:http, SSE) lives in src/node/serve/.

import { ServeError } from "../errors.js";
import type { Engine } from "./engine.js";
import { type CompletionRequest, parseCompletionRequest } from "./request.js";
import { Scheduler, type SchedulerOptions, type SchedulerStats, type SequenceResult } from "./scheduler.js";

/** Receives a completion's progress; one request may hold several prompts (choices by index). */
export interface CompletionSink {
  onToken(index: number, id: number, text: string): void;
  onChoiceFinish(index: number, result: SequenceResult): void;
  /** Every choice finished. */
  onDone(usage: Usage): void;
  /** The first error of any choice; the other choices are cancelled and nothing follows. */
  onError(error: ServeError): void;
}

/** Token counts of a finished request (OpenAI's usage object). */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A completion in progress. */
export interface CompletionHandle {
  request: CompletionRequest;
  /** Prompt token ids per choice. */
  promptIds: number[][];
  /** Stops every choice; `error` (if given) goes to the sink's onError. */
  cancel(error: ServeError | null): void;
}

/** A model the server answers to. */
export interface ModelEntry {
  id: string;
  /** null for the base model; the base model's name for adapters. */
  parent: string | null;
}

export interface ServiceOptions extends SchedulerOptions {
  /** The name the base model is served under. */
  baseName: string;
  /** Seed for requests that name none (the host draws it; core code has no randomness). */
  drawSeed: () => number;
}

/** Completions, models and adapters over one engine. */
export class CompletionService {
  readonly scheduler: Scheduler;
  private readonly uses = new Map<string, number>();
  private readonly loading = new Set<string>();
  private isDraining = false;

  constructor(
    readonly engine: Engine,
    private readonly options: ServiceOptions,
  ) {
    this.scheduler = new Scheduler(engine, options);
  }

  get baseName(): string {
    return this.options.baseName;
  }

  /** The base model first, then the adapters in attach order. */
  models(): ModelEntry[] {
    const adapters = this.engine.adapters().map((id) => ({ id, parent: this.options.baseName }));
    return [{ id: this.options.baseName, parent: null }, ...adapters];
  }

  stats(): SchedulerStats & { adapterUses: Record<string, number> } {
    return { ...this.scheduler.stats(), adapterUses: Object.fromEntries(this.uses) };
  }

  /**
   * Validates a completions body and queues its prompts.
   * @throws {ServeError} 400 invalid_request / context_length_exceeded, 404 model_not_found, 429 queue_full,
   * 503 shutting_down
   */
  complete(body: unknown, sink: CompletionSink): CompletionHandle {
    if (this.isDraining) throw new ServeError("shutting_down", 503, "completions: the server is shutting down");
    const request = parseCompletionRequest(body);
    const adapter = this.resolveModel(request.model);
    const promptIds = request.prompts.map((p, i) => this.tokenize(p, i, request));
    if (!this.scheduler.hasRoom(promptIds.length)) {
      const { maxBatch, maxWaiting } = this.options;
      const { running, waiting } = this.scheduler.stats();
      throw new ServeError(
        "queue_full",
        429,
        `completions: ${running} sequences are running and ${waiting} waiting, ${promptIds.length} more do not fit (limit ${maxBatch} running + ${maxWaiting} waiting); try again shortly`,
      );
    }
    const seed = request.seed ?? this.options.drawSeed();
    const ids: number[] = [];
    const finished: (SequenceResult | null)[] = promptIds.map(() => null);
    let isOver = false;
    const end = () => {
      if (adapter !== null) this.release(adapter, promptIds.length);
    };
    const cancel = (error: ServeError | null) => {
      if (isOver) return;
      isOver = true;
      for (const id of ids) this.scheduler.cancel(id, null);
      end();
      if (error) sink.onError(error);
    };
    if (adapter !== null) this.uses.set(adapter, (this.uses.get(adapter) ?? 0) + promptIds.length);
    promptIds.forEach((prompt, index) => {
      const { maxTokens, sampling, stop } = request;
      const spec = { adapter, promptIds: prompt, maxTokens, sampling, stop, seed: seed + index };
      const id = this.scheduler.submit(spec, {
        onToken: (token, text) => sink.onToken(index, token, text),
        onError: (error) => cancel(error),
        onFinish: (result) => {
          finished[index] = result;
          sink.onChoiceFinish(index, result);
          if (finished.every((r) => r !== null)) {
            isOver = true;
            end();
            const prompt_tokens = promptIds.reduce((n, p) => n + p.length, 0);
            const completion_tokens = finished.reduce((n, r) => n + r!.ids.length, 0);
            sink.onDone({ prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens });
          }
        },
      });
      ids.push(id);
    });
    return { request, promptIds, cancel };
  }

  /**
   * Attaches an adapter under `name` from `location` (already checked by the host).
   * @throws {ServeError} 400 invalid_request / duplicate_adapter
   */
  async loadAdapter(name: string, location: string): Promise<void> {
    this.checkAdapterName(name, "load_lora_adapter");
    if (this.engine.adapters().includes(name) || this.loading.has(name))
      throw new ServeError(
        "duplicate_adapter",
        400,
        `load_lora_adapter: an adapter named "${name}" is already loaded (unload it first)`,
        "lora_name",
      );
    this.loading.add(name);
    try {
      await this.engine.attachAdapter(name, location);
    } finally {
      this.loading.delete(name);
    }
  }

  /**
   * Detaches an adapter that no queued or running request uses.
   * @throws {ServeError} 404 model_not_found, 409 adapter_in_use
   */
  unloadAdapter(name: unknown): void {
    this.checkAdapterName(name, "unload_lora_adapter");
    if (!this.engine.adapters().includes(name))
      throw new ServeError(
        "model_not_found",
        404,
        `unload_lora_adapter: no adapter named ${JSON.stringify(name)} (loaded: ${this.listNames()})`,
        "lora_name",
      );
    const uses = this.uses.get(name) ?? 0;
    if (uses > 0)
      throw new ServeError(
        "adapter_in_use",
        409,
        `unload_lora_adapter: adapter "${name}" is used by ${uses} queued or running sequences; retry when they finish`,
        "lora_name",
      );
    this.engine.detachAdapter(name);
  }

  /** Refuses new completions from now on (503 "shutting_down"); running ones go on. */
  drain(): void {
    this.isDraining = true;
  }

  private listNames(): string {
    const names = this.engine.adapters();
    return names.length ? names.map((n) => JSON.stringify(n)).join(", ") : "none";
  }

  /**
   * Checks an adapter name from a request body.
   * @throws {ServeError} 400 invalid_request
   */
  checkAdapterName(name: unknown, op: string): asserts name is string {
    if (typeof name !== "string" || name === "" || name.length > 256 || name === this.options.baseName)
      throw new ServeError(
        "invalid_request",
        400,
        `${op}: lora_name is ${JSON.stringify(name) ?? String(name)}, expected a non-empty string of at most 256 characters other than the base model's name ("${this.options.baseName}")`,
        "lora_name",
      );
  }

  private resolveModel(model: string): string | null {
    if (model === this.options.baseName) return null;
    if (this.engine.adapters().includes(model)) return model;
    throw new ServeError(
      "model_not_found",
      404,
      `completions: model ${JSON.stringify(model)} does not exist, expected "${this.options.baseName}" or an adapter (loaded: ${this.listNames()})`,
      "model",
    );
  }

  private tokenize(prompt: CompletionRequest["prompts"][number], index: number, r: CompletionRequest): number[] {
    const { info } = this.engine;
    const where = r.prompts.length > 1 ? `prompt[${index}]` : "prompt";
    if (!info.hasTokenizer && ("text" in prompt || r.stop.length > 0))
      throw new ServeError(
        "invalid_request",
        400,
        `completions: ${"text" in prompt ? `${where} is text` : "stop strings were given"} but the model has no tokenizer (send token ids; stop on token ids is not available)`,
        "text" in prompt ? "prompt" : "stop",
      );
    const ids = "text" in prompt ? this.engine.encode(prompt.text) : prompt.ids;
    if (ids.length === 0)
      throw new ServeError(
        "invalid_request",
        400,
        `completions: ${where} has no tokens, expected at least one`,
        "prompt",
      );
    const bad = ids.findIndex((t) => t >= info.vocabSize);
    if (bad >= 0)
      throw new ServeError(
        "invalid_request",
        400,
        `completions: ${where}[${bad}] is token ${ids[bad]}, expected an id below the vocabulary size ${info.vocabSize}`,
        "prompt",
      );
    if (ids.length + r.maxTokens > info.contextLength)
      throw new ServeError(
        "context_length_exceeded",
        400,
        `completions: ${where} has ${ids.length} tokens and max_tokens is ${r.maxTokens}, ${ids.length + r.maxTokens} in all, expected at most the model's context length ${info.contextLength}`,
        ids.length >= info.contextLength ? "prompt" : "max_tokens",
      );
    return ids;
  }

  private release(adapter: string, count: number): void {
    const left = (this.uses.get(adapter) ?? 0) - count;
    if (left > 0) this.uses.set(adapter, left);
    else this.uses.delete(adapter);
  }
}

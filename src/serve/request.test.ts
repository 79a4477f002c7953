import { describe, expect, it } from "vitest";
import { ServeError } from "../errors.js";
import { DEFAULT_MAX_TOKENS, parseCompletionRequest } from "./request.js";

const BASE = { model: "m", prompt: "hi" };

function refusal(body: unknown): ServeError {
  try {
    parseCompletionRequest(body);
  } catch (e) {
    expect(e).toBeInstanceOf(ServeError);
    return e as ServeError;
  }
  throw new Error("expected a refusal");
}

describe("parseCompletionRequest", () => {
  it("fills OpenAI's defaults", () => {
    expect(parseCompletionRequest(BASE)).toEqual({
      model: "m",
      prompts: [{ text: "hi" }],
      maxTokens: DEFAULT_MAX_TOKENS,
      sampling: { temperature: 1, topP: 1, topK: 0 },
      seed: null,
      stop: [],
      stream: false,
      includeUsage: false,
    });
  });

  it("reads every prompt form, the sampling fields, stop and stream options", () => {
    const r = parseCompletionRequest({
      model: "a",
      prompt: [[1, 2], "x"],
      max_tokens: 5,
      temperature: 0,
      top_p: 0.5,
      top_k: -1,
      seed: 42,
      stop: "\n",
      stream: true,
      stream_options: { include_usage: true },
      n: 1,
      echo: false,
      logprobs: null,
      logit_bias: {},
      user: "u",
    });
    expect(r.prompts).toEqual([{ ids: [1, 2] }, { text: "x" }]);
    expect(r).toMatchObject({ maxTokens: 5, seed: 42, stop: ["\n"], stream: true, includeUsage: true });
    expect(r.sampling).toEqual({ temperature: 0, topP: 0.5, topK: 0 });
    expect(parseCompletionRequest({ ...BASE, prompt: [7, 8] }).prompts).toEqual([{ ids: [7, 8] }]);
    expect(parseCompletionRequest({ ...BASE, prompt: ["a", "b"] }).prompts).toEqual([{ text: "a" }, { text: "b" }]);
  });

  // [body, param, message]
  const CASES: [unknown, string | null, string][] = [
    [[1], null, "completions: the body is [1], expected a JSON object"],
    [{ prompt: "x" }, "model", "completions: model is undefined, expected the name of the base model or of an adapter"],
    [{ model: "m" }, "prompt", "completions: prompt is missing"],
    [{ ...BASE, prompt: [] }, "prompt", "completions: prompt is [], expected a string, an array of strings"],
    [{ ...BASE, prompt: [1, -2] }, "prompt", "completions: prompt[1] is -2, expected a token id (an integer ≥ 0)"],
    [{ ...BASE, prompt: [[1], 2.5] }, "prompt", "completions: prompt[1] is 2.5, expected a string or a non-empty"],
    [{ ...BASE, prompt: [[0, 1.5]] }, "prompt", "completions: prompt[0][1] is 1.5, expected a token id"],
    [{ ...BASE, prompt: Array(65).fill("a") }, "prompt", "completions: prompt has 65 prompts, expected at most 64"],
    [{ ...BASE, max_tokens: 0 }, "max_tokens", "completions: max_tokens is 0, expected an integer in [1, "],
    [{ ...BASE, max_tokens: "9" }, "max_tokens", 'completions: max_tokens is "9", expected an integer'],
    [{ ...BASE, temperature: 2.5 }, "temperature", "completions: temperature is 2.5, expected a number in [0, 2]"],
    [{ ...BASE, top_p: 0 }, "top_p", "completions: top_p is 0, expected a number in (0, 1]"],
    [{ ...BASE, top_k: 1.5 }, "top_k", "completions: top_k is 1.5, expected an integer in [-1, "],
    [{ ...BASE, seed: 1.5 }, "seed", "completions: seed is 1.5, expected an integer or null"],
    [{ ...BASE, stop: ["a", ""] }, "stop", 'completions: stop is ["a",""], expected a non-empty string or up to 4'],
    [{ ...BASE, stop: ["a", "b", "c", "d", "e"] }, "stop", "completions: stop is"],
    [{ ...BASE, stream: "yes" }, "stream", 'completions: stream is "yes", expected true or false'],
    [
      { ...BASE, stream_options: { include_usage: true } },
      "stream_options",
      'completions: stream_options is {"include_usage":true}, expected an object, and only with stream: true',
    ],
    [
      { ...BASE, stream: true, stream_options: { include_usage: 1 } },
      "stream_options",
      "completions: stream_options.include_usage is 1, expected true or false",
    ],
    [{ ...BASE, n: 2 }, "n", "completions: n 2 is not supported, expected null or 1"],
    [{ ...BASE, logprobs: 3 }, "logprobs", "completions: logprobs 3 is not supported, expected null"],
    [{ ...BASE, echo: true }, "echo", "completions: echo true is not supported, expected null or false"],
    [{ ...BASE, logit_bias: { 5: 1 } }, "logit_bias", 'completions: logit_bias {"5":1} is not supported'],
    [{ ...BASE, temprature: 1 }, "temprature", 'completions: unknown field "temprature" (not part of the completions'],
  ];

  it.each(CASES)("refuses %j (param %s) with invalid_request and a message naming it", (body, param, message) => {
    const e = refusal(body);
    expect(e.code).toBe("invalid_request");
    expect(e.status).toBe(400);
    expect(e.param).toBe(param);
    expect(e.message.startsWith(message)).toBe(true);
  });
});

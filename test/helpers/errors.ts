// Captures the LoraError a call throws, so a test can assert its class, code and message (STYLE.md §6.7).

import { expect } from "vitest";
import { LoraError } from "../../src/errors.js";

/** Runs f and returns the LoraError it throws; rethrows any other error, and fails when nothing is thrown. */
export function caught(f: () => unknown): LoraError {
  try {
    f();
  } catch (e) {
    if (e instanceof LoraError) return e;
    throw e;
  }
  throw new Error("expected a LoraError, nothing was thrown");
}

/** [code, message] of the LoraError f throws (see caught), for one toEqual over both. */
export function codeAndMessage(f: () => unknown): [string, string] {
  const e = caught(f);
  return [e.code, e.message];
}

/** Awaits f, expects a LoraError with this code, and returns it for message checks (sync or async f). */
export async function loraError(f: () => unknown, code: string): Promise<LoraError> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(LoraError);
    expect((e as LoraError).code).toBe(code);
    return e as LoraError;
  }
  throw new Error(`expected a LoraError with code ${code}`);
}

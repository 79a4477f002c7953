// Asserts that fn throws a LoraError of the given class, code and message (STYLE.md §6.7: never a bare toThrow()).

import { expect } from "vitest";
import type { LoraError } from "../../src/errors.js";

export function expectLoraError(
  fn: () => unknown,
  cls: abstract new (...args: never[]) => LoraError,
  code: string,
  message: RegExp,
): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected a throw").toBeInstanceOf(cls);
  expect((caught as LoraError).code).toBe(code);
  expect((caught as LoraError).message).toMatch(message);
}

// Typed-array facts that `instanceof` and `===` on buffers get wrong. (1) Arrays made in another realm (a `vm`
// context, an iframe, Jest's environment) have other constructors but the same element types: they are recognised
// by their internal type name and re-viewed through this realm's constructor over the same memory (no copy), so
// every later check and kernel sees one type. (2) Two SharedArrayBuffer objects can be one memory (structuredClone
// or postMessage of a SharedArrayBuffer, or WebAssembly.Memory#buffer before and after it grew): `a.buffer !==
// b.buffer` does not prove that two arrays are apart, so such pairs are probed (sharesMemory).

import type { FloatArray } from "../matrix.js";

// %TypedArray%.prototype[Symbol.toStringTag]: the element type name of any realm's typed array, else undefined
const typedArrayTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)
  ?.get as (this: unknown) => string | undefined;

/** The element type name of a typed array from any realm ("Float32Array", …); undefined for anything else. */
export function typedArrayName(v: unknown): string | undefined {
  return ArrayBuffer.isView(v) ? typedArrayTag.call(v) : undefined;
}

/** "a Float32Array", "a DataView", "a number" … for messages (typed arrays of any realm by their type name). */
export function describeArray(v: unknown): string {
  const name = typedArrayName(v);
  if (name !== undefined) return `a ${name}`;
  return ArrayBuffer.isView(v) ? "a DataView" : v === null ? "null" : `a ${typeof v}`;
}

/**
 * A Float32Array / Float64Array of this realm over the same memory as v (v itself when it already is one), or
 * null when v is not a float32/float64 typed array of any realm.
 */
export function localFloatArray(v: unknown): FloatArray | null {
  if (v instanceof Float32Array || v instanceof Float64Array) return v;
  const name = typedArrayName(v);
  if (name !== "Float32Array" && name !== "Float64Array") return null;
  const t = v as unknown as { buffer: ArrayBufferLike; byteOffset: number; length: number };
  return name === "Float32Array"
    ? new Float32Array(t.buffer, t.byteOffset, t.length)
    : new Float64Array(t.buffer, t.byteOffset, t.length);
}

function isShared(b: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer === "function" && Object.prototype.toString.call(b) === "[object SharedArrayBuffer]";
}

/**
 * Whether writing `out` can change `input`: their byte ranges overlap in one buffer, or — for two different
 * SharedArrayBuffer objects, which may be one memory seen twice, each view's offsets counting from the start of that
 * memory — one byte of out inside both ranges is flipped and restored (Atomics.xor, twice) and input is watched.
 * Only `out`'s own bytes are written, and out is about to be overwritten by the caller anyway.
 */
export function sharesMemory(out: FloatArray, input: FloatArray): boolean {
  if (out.byteLength === 0 || input.byteLength === 0) return false;
  const lo = Math.max(out.byteOffset, input.byteOffset);
  const hi = Math.min(out.byteOffset + out.byteLength, input.byteOffset + input.byteLength);
  if (out.buffer === input.buffer) return lo < hi;
  if (lo >= hi || !isShared(out.buffer) || !isShared(input.buffer)) return false;
  const o = new Uint8Array(out.buffer, lo, 1);
  const i = new Uint8Array(input.buffer, lo, 1);
  if (Atomics.load(o, 0) !== Atomics.load(i, 0)) return false;
  const before = Atomics.xor(o, 0, 0xff);
  const seen = Atomics.load(i, 0);
  Atomics.xor(o, 0, 0xff);
  return seen === (before ^ 0xff);
}

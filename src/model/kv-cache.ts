// The key/value cache of one sequence: per layer, keys and values of every position seen so far, row-major
// [capacity, numKvHeads·headDim] (rotary models store keys after rotation). `length` is the number of positions
// filled, which is also the position of the next token. The arrays live in kernel memory where the WebAssembly
// kernels have it (kernelFloat32Array), so attention reads them in place. Capacities are powers of two, so the
// space a finished sequence gives back (dispose(), or when the cache is garbage-collected) fits the next sequences
// and a long-running server's kernel memory stays flat. Arrays from keysOf/valuesOf are valid while the cache is.

import { ArgumentError, KernelError } from "../errors.js";
import { kernelFloat32Array, releaseKernelArray } from "../kernels/select.js";
import { showValue } from "./show.js";

const MIN_CAPACITY = 1;

// Gives a collected cache's kernel arrays back (a cache dropped without dispose()).
const registry =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<Float32Array[]>((arrays) => {
        for (const a of arrays) releaseKernelArray(a);
      })
    : null;

// A zeroed array in kernel memory, or a plain one where that memory is full (attention then runs in TypeScript).
function allocate(length: number): Float32Array {
  try {
    return kernelFloat32Array(length);
  } catch (e) {
    if ((e instanceof ArgumentError && e.code === "too_large") || e instanceof KernelError)
      return new Float32Array(length);
    throw e;
  }
}

const powerOfTwo = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(MIN_CAPACITY, n)));

// Positions a cache may hold: far above any model's context, low enough that capacity × width stays a valid
// typed-array length for the widths models have.
const MAX_POSITIONS = 2 ** 20;

/** How the model advances a cache after a step (not part of the public API: only forward() fills positions). */
export const ADVANCE: unique symbol = Symbol("KvCache.advance");

function readCount(op: string, name: string, v: unknown, max: number): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > max)
    throw new ArgumentError(
      "invalid_argument",
      `${op}: ${name} is ${showValue(v)}, expected an integer in [0, ${max}]`,
      { name, value: v },
    );
  return v as number;
}

/** One sequence's cache. Create it with `model.createCache()`; reuse it across forward calls to decode. */
export class KvCache {
  readonly numLayers: number;
  /** numKvHeads·headDim: floats per position per layer, for keys and for values each. */
  readonly width: number;
  private filled = 0;
  private capacity: number;
  private keys: Float32Array[];
  private values: Float32Array[];
  // every array held, for the finalizer (the same array objects as keys and values)
  private held: Float32Array[] = [];

  constructor(numLayers: number, width: number, initialCapacity = MIN_CAPACITY) {
    this.numLayers = readCount("KvCache", "numLayers", numLayers, 4096);
    this.width = readCount("KvCache", "width", width, 2 ** 20);
    this.capacity = powerOfTwo(readCount("KvCache", "initialCapacity", initialCapacity, MAX_POSITIONS));
    if (this.capacity * width > 2 ** 30) throw tooLarge("KvCache", this.capacity, width);
    this.keys = Array.from({ length: numLayers }, () => allocate(this.capacity * width));
    this.values = Array.from({ length: numLayers }, () => allocate(this.capacity * width));
    this.hold();
  }

  /** Positions filled: the position of the next token. Lowering it forgets positions (as truncate does). */
  get length(): number {
    return this.filled;
  }
  set length(n: number) {
    if (typeof n === "number" && n > this.filled)
      throw new ArgumentError(
        "invalid_argument",
        `KvCache.length: cannot be raised to ${n}: the cache holds ${this.filled} positions and only the model fills them (lowering it, as truncate() does, is allowed)`,
        { name: "length", value: n },
      );
    this.truncate(n);
  }

  /** Makes room for `extra` more positions (keeps what is stored). */
  reserve(extra: number): void {
    const need = this.filled + readCount("KvCache.reserve", "extra", extra, MAX_POSITIONS - this.filled);
    if (need <= this.capacity) return;
    const cap = powerOfTwo(need);
    if (cap * this.width > 2 ** 30) throw tooLarge("KvCache.reserve", cap, this.width);
    const grow = (old: Float32Array): Float32Array => {
      const a = allocate(cap * this.width);
      a.set(old.subarray(0, this.filled * this.width));
      return a;
    };
    const keys = this.keys.map(grow);
    const values = this.values.map(grow);
    this.release();
    this.keys = keys;
    this.values = values;
    this.capacity = cap;
    this.hold();
  }

  /** Layer l's keys: [capacity, width] (rows 0 … length − 1 are valid). */
  keysOf(l: number): Float32Array {
    return this.keys[l]!;
  }
  /** Layer l's values: [capacity, width]. */
  valuesOf(l: number): Float32Array {
    return this.values[l]!;
  }

  /** Forgets positions from `length` on (e.g. to reuse a prompt prefix); a length ≥ the current one changes nothing. */
  truncate(length: number): void {
    if (typeof length !== "number" || !(length >= 0) || (!Number.isInteger(length) && length !== Infinity))
      throw new ArgumentError(
        "invalid_argument",
        `KvCache.truncate: length is ${showValue(length)}, expected an integer ≥ 0 (the cache holds ${this.filled} positions)`,
        { name: "length", value: length },
      );
    this.filled = Math.min(this.filled, length);
  }

  /** Marks n more positions filled; the model calls it once a step has written them (reserve() made the room). */
  [ADVANCE](n: number): void {
    this.filled += n;
  }

  /**
   * Gives the cache's kernel memory back now (rather than when it is garbage-collected). The cache is empty
   * afterwards and grows again if used.
   */
  dispose(): void {
    this.release();
    this.capacity = 0;
    this.filled = 0;
    this.keys = this.keys.map(() => new Float32Array(0));
    this.values = this.values.map(() => new Float32Array(0));
  }

  /** Bytes held. */
  get bytes(): number {
    return 2 * this.numLayers * this.capacity * this.width * 4;
  }

  private hold(): void {
    this.held = [...this.keys, ...this.values];
    registry?.register(this, this.held, this);
  }

  private release(): void {
    registry?.unregister(this);
    for (const a of this.held) releaseKernelArray(a);
    this.held = [];
  }
}

function tooLarge(op: string, capacity: number, width: number): ArgumentError {
  return new ArgumentError(
    "too_large",
    `${op}: ${capacity} positions × ${width} floats per layer is more than a cache array can hold (2^30 floats)`,
    { name: "capacity", value: capacity },
  );
}

// The key/value cache of one sequence: per layer, keys and values of every position seen so far, row-major
// [capacity, numKvHeads·headDim] (rotary models store keys after rotation). Grows by doubling; `length` is the
// number of positions filled, which is also the position of the next token.

/** One sequence's cache. Create it with `model.createCache()`; reuse it across forward calls to decode. */
export class KvCache {
  readonly numLayers: number;
  /** numKvHeads·headDim: floats per position per layer, for keys and for values each. */
  readonly width: number;
  /** Positions filled. */
  length = 0;
  private capacity: number;
  private readonly keys: Float32Array[];
  private readonly values: Float32Array[];

  constructor(numLayers: number, width: number, initialCapacity = 16) {
    this.numLayers = numLayers;
    this.width = width;
    this.capacity = Math.max(1, initialCapacity);
    this.keys = Array.from({ length: numLayers }, () => new Float32Array(this.capacity * width));
    this.values = Array.from({ length: numLayers }, () => new Float32Array(this.capacity * width));
  }

  /** Makes room for `extra` more positions (keeps what is stored). */
  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.capacity) return;
    let cap = this.capacity;
    while (cap < need) cap *= 2;
    for (let l = 0; l < this.numLayers; l++) {
      const k = new Float32Array(cap * this.width);
      k.set(this.keys[l]!.subarray(0, this.length * this.width));
      this.keys[l] = k;
      const v = new Float32Array(cap * this.width);
      v.set(this.values[l]!.subarray(0, this.length * this.width));
      this.values[l] = v;
    }
    this.capacity = cap;
  }

  /** Layer l's keys: [capacity, width] (rows 0 … length − 1 are valid). */
  keysOf(l: number): Float32Array {
    return this.keys[l]!;
  }
  /** Layer l's values: [capacity, width]. */
  valuesOf(l: number): Float32Array {
    return this.values[l]!;
  }

  /** Forgets positions from `length` on (e.g. to reuse a prompt prefix). */
  truncate(length: number): void {
    this.length = Math.max(0, Math.min(this.length, Math.floor(length)));
  }

  /** Bytes held. */
  get bytes(): number {
    return 2 * this.numLayers * this.capacity * this.width * 4;
  }
}

// Completion text, token by token: incremental detokenization and stop strings.
// Decoding re-reads a short window of ids (from `prefixOffset`) so that tokens which only make sense together (a
// UTF-8 character split over byte tokens, a word-start marker) come out right; new text is released only when the
// window's decoding grew and does not end in U+FFFD (an unfinished character). Text that could be the start of a
// stop string is held back until it is known not to be one; when a stop string appears, the text ends before it.

/** Appends tokens, returns the text that can be shown now; knows when a stop string was produced. */
export class TextStream {
  /** The completion text released so far (stop string excluded). */
  text = "";
  /** Whether a stop string appeared; nothing is released after it. */
  isStopped = false;
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  /** Decoded text not yet released (may hold the start of a stop string). */
  private pending = "";
  private readonly maxStop: number;

  /**
   * @param context the last few prompt ids: decoded with the first new tokens so that those keep what depends on
   * what precedes them (a SentencePiece word-start space is dropped at the start of a decode); not part of the text
   */
  constructor(
    private readonly decode: ((ids: readonly number[]) => string) | null,
    private readonly stop: readonly string[],
    context: readonly number[] = [],
  ) {
    this.maxStop = Math.max(0, ...stop.map((s) => s.length));
    this.ids.push(...context);
    this.readOffset = context.length;
  }

  /** Adds one generated token; returns the newly released text (often ""). */
  push(id: number): string {
    if (this.isStopped || !this.decode) return "";
    this.ids.push(id);
    const before = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const after = this.decode(this.ids.slice(this.prefixOffset));
    if (after.length <= before.length || after.endsWith("\uFFFD")) return "";
    this.pending += after.slice(before.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return this.release(false);
  }

  /**
   * Ends the stream (length or end-of-sequence): releases what was held back, an unfinished character (as U+FFFD)
   * and text that could have started a stop string.
   */
  finish(): string {
    if (this.isStopped || !this.decode) return "";
    if (this.readOffset < this.ids.length) {
      const before = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
      this.pending += this.decode(this.ids.slice(this.prefixOffset)).slice(before.length);
      this.prefixOffset = this.readOffset = this.ids.length;
    }
    return this.release(true);
  }

  private release(isFinal: boolean): string {
    // a stop string may start in already released text only if it overlaps the pending part
    const searchText = this.text.slice(Math.max(0, this.text.length - this.maxStop + 1)) + this.pending;
    const offset = this.text.length - (searchText.length - this.pending.length);
    let cut = -1;
    for (const s of this.stop) {
      const at = searchText.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      const end = offset + cut;
      const delta = end > this.text.length ? (this.text + this.pending).slice(this.text.length, end) : "";
      this.text += delta;
      this.pending = "";
      this.isStopped = true;
      return delta;
    }
    const hold = isFinal ? 0 : this.heldBack(searchText);
    const delta = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(delta.length);
    this.text += delta;
    return delta;
  }

  /** Length of the longest suffix of `s` (within the pending text) that is a proper prefix of a stop string. */
  private heldBack(s: string): number {
    let best = 0;
    for (const stop of this.stop) {
      for (let k = Math.min(stop.length - 1, this.pending.length, s.length); k > best; k--) {
        if (s.endsWith(stop.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}

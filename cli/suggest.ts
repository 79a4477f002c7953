// "Did you mean": the closest known word to a mistyped one, by edit distance.

/** Edit distance with adjacent transpositions (optimal string alignment): each insertion, deletion, substitution
 * or swap of two neighbouring letters ("trian" for "train") costs 1. */
export function editDistance(a: string, b: string): number {
  // d[i][j]: distance between the first i letters of a and the first j of b
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i + j));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known word closest to `word` (case ignored) when it is within a third of the word's length (at least 1, at
 * most 2 edits), or a word that `word` is a prefix of; undefined when nothing is that close or two words tie.
 */
export function suggest(word: string, known: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  const prefixed = known.filter((k) => w.length >= 2 && k.startsWith(w));
  if (prefixed.length === 1) return prefixed[0];
  const limit = Math.min(2, Math.max(1, Math.floor(w.length / 3)));
  const scored = known.map((k) => ({ k, d: editDistance(w, k) })).filter((s) => s.d <= limit);
  scored.sort((x, y) => x.d - y.d);
  if (scored.length === 0 || (scored.length > 1 && scored[1]!.d === scored[0]!.d)) return undefined;
  return scored[0]!.k;
}

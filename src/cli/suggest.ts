/**
 * "Did you mean ...?" for the command line: the closest candidate within a few typing mistakes
 * (optimal string alignment distance: insertions, deletions, substitutions, swapped neighbours).
 */
const MAX_DISTANCE = 2;

function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 0; j <= b.length; j += 1) d[0][j] = j;
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The candidate closest to `word`, if one is within two edits and shares most of its letters. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = MAX_DISTANCE + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    const similarity = 1 - distance / Math.max(word.length, candidate.length);
    if (distance < bestDistance && similarity > 0.4) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

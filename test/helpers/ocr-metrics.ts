/**
 * How close a reading is to the truth, the way OCR is usually scored: character error rate (edit
 * distance over the truth's length) and word accuracy (1 − word error rate, at least 0), both on
 * the whole text with every run of whitespace made one space, so that tools splitting lines
 * differently are compared on their characters and their order alone.
 */

export function normalizeText(lines: string[]): string {
  return lines.join(' ').replace(/\s+/g, ' ').trim();
}

/** Levenshtein distance between two sequences. */
export function editDistance<T>(a: ArrayLike<T>, b: ArrayLike<T>): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

export function characterErrorRate(read: string[], truth: string[]): number {
  const reference = normalizeText(truth);
  return editDistance(normalizeText(read), reference) / Math.max(reference.length, 1);
}

export function wordAccuracy(read: string[], truth: string[]): number {
  const reference = normalizeText(truth).split(' ');
  const words = normalizeText(read)
    .split(' ')
    .filter((w) => w !== '');
  return Math.max(0, 1 - editDistance(words, reference) / reference.length);
}

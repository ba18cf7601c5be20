/** One recognised text line. */
export interface RecognizedText {
  text: string;
  /** Mean probability of the characters kept (0 for an empty line), as PaddleOCR reports it. */
  confidence: number;
}

/**
 * The class list of a CTC recognizer: the blank at `blankIndex`, the dictionary's lines in order
 * around it, and optionally a space at the end (PaddleOCR's `use_space_char`).
 */
export function ctcClasses(
  dictionaryText: string,
  options: { blankIndex?: number; appendSpace?: boolean } = {},
): string[] {
  const characters = dictionaryText.split(/\r?\n/).filter((line, i, all) => line !== '' || i < all.length - 1);
  if (options.appendSpace ?? true) characters.push(' ');
  characters.splice(options.blankIndex ?? 0, 0, '');
  return characters;
}

/**
 * Greedy CTC decoding of an N×T×C probability tensor: the best class at each time step, repeats
 * merged, blanks dropped.
 */
export function ctcGreedyDecode(
  probabilities: ArrayLike<number>,
  shape: readonly number[],
  classes: readonly string[],
  blankIndex = 0,
): RecognizedText[] {
  const [rows, steps, classCount] = shape;
  const result: RecognizedText[] = [];
  for (let n = 0; n < rows; n++) {
    let text = '';
    let sum = 0;
    let kept = 0;
    let previous = -1;
    for (let t = 0; t < steps; t++) {
      const base = (n * steps + t) * classCount;
      let best = 0;
      let bestP = -Infinity;
      for (let k = 0; k < classCount; k++) {
        const p = probabilities[base + k];
        if (p > bestP) {
          bestP = p;
          best = k;
        }
      }
      if (best !== blankIndex && best !== previous) {
        text += classes[best];
        sum += bestP;
        kept += 1;
      }
      previous = best;
    }
    result.push({ text, confidence: kept === 0 ? 0 : sum / kept });
  }
  return result;
}

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
 * Added to what the unseen classes could hold: a float32 softmax over thousands of classes sums to 1
 * only within rounding (~1e-6), and the slack makes the scan stop a little later, never too early.
 */
const SUM_SLACK = 1e-3;

/**
 * Greedy CTC decoding of an N×T×C probability tensor: the best class at each time step, repeats
 * merged, blanks dropped.
 *
 * With `sumsToOne` (the model ends in a softmax, so each step's values are non-negative and sum to
 * 1) a step's scan stops as soon as its best value exceeds what the classes not yet seen could hold
 * together: the same answer as the full scan, found early on the blank and early classes that make
 * up most steps (PP-OCR's recognizer: ~6,600 classes per step, the blank first).
 */
export function ctcGreedyDecode(
  probabilities: ArrayLike<number>,
  shape: readonly number[],
  classes: readonly string[],
  blankIndex = 0,
  sumsToOne = false,
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
      const best = sumsToOne
        ? bestOfDistribution(probabilities, base, classCount)
        : bestOf(probabilities, base, classCount);
      const bestP = probabilities[base + best];
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

/** Index of the largest of `count` values from `base` (the first of equals). */
function bestOf(values: ArrayLike<number>, base: number, count: number): number {
  let best = 0;
  let bestP = -Infinity;
  for (let k = 0; k < count; k++) {
    const p = values[base + k];
    if (p > bestP) {
      bestP = p;
      best = k;
    }
  }
  return best;
}

/** bestOf for values that sum to 1: stops once no unseen value can exceed the best. */
function bestOfDistribution(values: ArrayLike<number>, base: number, count: number): number {
  let best = 0;
  let bestP = -Infinity;
  let unseen = 1 + SUM_SLACK;
  for (let k = 0; k < count; k++) {
    const p = values[base + k];
    if (p > bestP) {
      bestP = p;
      best = k;
    }
    unseen -= p;
    if (bestP > unseen) break;
  }
  return best;
}

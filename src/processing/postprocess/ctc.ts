import { bestAlongLastAxis } from '../../runtime/output-reductions.js';

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
  const [rows, steps] = shape;
  const { indices, maxima } = bestAlongLastAxis(probabilities, shape, sumsToOne);
  return ctcDecodeBest(indices, maxima, rows, steps, classes, blankIndex);
}

/**
 * Greedy CTC decoding from each step's best class and its probability (N×T each, as the worker's
 * output reduction gives them): repeats merged, blanks dropped, confidence the mean probability of
 * the characters kept.
 */
export function ctcDecodeBest(
  indices: ArrayLike<number>,
  maxima: ArrayLike<number>,
  rows: number,
  steps: number,
  classes: readonly string[],
  blankIndex = 0,
): RecognizedText[] {
  const result: RecognizedText[] = [];
  for (let n = 0; n < rows; n++) {
    let text = '';
    let sum = 0;
    let kept = 0;
    let previous = -1;
    for (let t = n * steps; t < (n + 1) * steps; t++) {
      const best = indices[t];
      if (best !== blankIndex && best !== previous) {
        const character = classes[best];
        if (character === undefined) {
          throw new RangeError(`class ${best} at step ${t - n * steps} is beyond the ${classes.length} CTC classes`);
        }
        text += character;
        sum += maxima[t];
        kept += 1;
      }
      previous = best;
    }
    result.push({ text, confidence: kept === 0 ? 0 : sum / kept });
  }
  return result;
}

/**
 * Outputs reduced where they are computed. A CTC recognizer answers N×T×C probabilities (PP-OCRv4:
 * 6,625 classes, ~3.6 MB a line), of which its decoder reads one class and one value per step. The
 * worker thread that ran the session reduces them, and the main thread receives N×T indices and N×T
 * values instead: a page of 42 lines moved ~150 MB less through the main thread, which then spent
 * its time collecting garbage rather than reading requests.
 *
 * Only the server's own callers ask for these (the image pipelines): they are requested outputs named
 * `<output>#argmax` (INT32) and `<output>#max` (FP32), which no client can name (requested output
 * names are checked against the model's signature), and which batch like any requested outputs.
 * `@softmax` after them says each row is a distribution (non-negative, summing to 1), so a row's scan
 * stops once no unseen value can beat the best (the same answer, found in a fraction of the row).
 */
import type { NamedTensor } from '../protocol/datatypes.js';

export type ReductionTake = 'argmax' | 'max';

export interface OutputReduction {
  /** The model output reduced along its last axis. */
  output: string;
  take: ReductionTake;
  /** Rows are probability distributions (the model ends in a softmax). */
  distribution: boolean;
}

const PATTERN = /^(.+)#(argmax|max)(@softmax)?$/;

/** The requested-output name for a reduction. */
export function reducedOutputName(output: string, take: ReductionTake, distribution = false): string {
  return `${output}#${take}${distribution ? '@softmax' : ''}`;
}

/** The reduction a requested-output name asks for, or undefined for a plain output name. */
export function parseReducedOutputName(name: string): OutputReduction | undefined {
  const match = PATTERN.exec(name);
  if (match === null) return undefined;
  return { output: match[1], take: match[2] as ReductionTake, distribution: match[3] !== undefined };
}

/**
 * Added to what a row's unseen classes could hold: a float32 softmax over thousands of classes sums
 * to 1 only within rounding (~1e-6), and the slack makes the scan stop a little later, never too early.
 */
const SUM_SLACK = 1e-3;

/**
 * The largest value along the last axis of a float tensor, and its index (the first of equals), for
 * every row. With `distribution`, a row's scan stops as soon as its best value exceeds what the
 * classes not yet seen could hold together.
 */
export function bestAlongLastAxis(
  values: ArrayLike<number>,
  shape: readonly number[],
  distribution: boolean,
): { indices: Int32Array; maxima: Float32Array } {
  const width = shape.length === 0 ? 1 : shape[shape.length - 1];
  const rows = width === 0 ? 0 : values.length / width;
  const indices = new Int32Array(rows);
  const maxima = new Float32Array(rows);
  for (let row = 0; row < rows; row++) {
    const base = row * width;
    let best = 0;
    let bestValue = -Infinity;
    let unseen = 1 + SUM_SLACK;
    for (let k = 0; k < width; k++) {
      const value = values[base + k];
      if (value > bestValue) {
        bestValue = value;
        best = k;
      }
      if (distribution) {
        unseen -= value;
        if (bestValue > unseen) break;
      }
    }
    indices[row] = best;
    maxima[row] = bestValue;
  }
  return { indices, maxima };
}

/**
 * The outputs a run was asked for, plain ones as the session gave them and reduced ones computed from
 * theirs (each full output reduced once, whatever is taken from it).
 */
export function withReductions(requested: readonly string[], results: ReadonlyMap<string, NamedTensor>): NamedTensor[] {
  const reduced = new Map<string, { indices: Int32Array; maxima: Float32Array }>();
  return requested.map((name) => {
    const reduction = parseReducedOutputName(name);
    if (reduction === undefined || results.has(name)) {
      const plain = results.get(name);
      if (plain === undefined) throw new Error(`the session returned no output ${name}`);
      return plain;
    }
    const full = results.get(reduction.output);
    if (full === undefined) throw new Error(`the session returned no output ${reduction.output}`);
    if (full.datatype !== 'FP32' || full.shape.length < 1) {
      throw new Error(
        `${name}: only an FP32 output with a last axis can be reduced, ${reduction.output} is ${full.datatype} ${JSON.stringify(full.shape)}`,
      );
    }
    const key = `${reduction.output}@${reduction.distribution}`;
    let best = reduced.get(key);
    if (best === undefined) {
      best = bestAlongLastAxis(full.data as Float32Array, full.shape, reduction.distribution);
      reduced.set(key, best);
    }
    const shape = full.shape.slice(0, -1);
    return reduction.take === 'argmax'
      ? { name, datatype: 'INT32', shape, data: best.indices }
      : { name, datatype: 'FP32', shape, data: best.maxima };
  });
}

/** The model outputs a session must compute for the requested names (reduced ones read their full output). */
export function sessionOutputsFor(requested: readonly string[], modelOutputs: readonly string[]): string[] {
  const names = requested.map((name) =>
    modelOutputs.includes(name) ? name : (parseReducedOutputName(name)?.output ?? name),
  );
  return [...new Set(names)];
}

import { requestBatchCap } from '../core/batch-size.js';
import type { RgbImage } from './image-decode.js';
import { predictImages, type ImageModel, type StageTimings } from './image-model.js';
import type { RecognizedText } from './postprocess/ctc.js';
import { tensorWidthOf } from './preprocess.js';

/**
 * The crops of a page, read the way PaddleOCR's TextRecognizer batches them: sorted by width so
 * that lines of similar length share a batch, `batchSize` per batch (fewer where the batch would
 * pass `maxColumns`), each batch padded only to its own widest line (up to the recognizer's
 * preprocess.resize.max_width), and the batches sent
 * together so that every instance of the recognizer works at once. A single tensor padded to the
 * page's widest line made every short line pay for the longest and ran on one instance.
 */

/** One recognizer request of a page, as bench/ocr-pipeline.ts reports it. */
export interface RecognizerBatch {
  crops: number;
  /** Width of the batch's tensor (every crop padded to it). */
  width: number;
  /** From the request's preprocessing to its decoded answer. */
  ms: number;
}

/**
 * Crop indices grouped into batches, narrowest first: at most `batchSize` crops, and at most
 * `maxColumns` tensor columns (crops × the batch's padded width) unless one crop alone is wider.
 * `widths` are the crops' tensor widths. Measured on 2 cores (bench/RESULTS.md): one line costs
 * about the same per column at any width, but six 1120-wide lines in one tensor cost 1.6× as much
 * per column as one alone; batching wide lines only made them slower.
 */
export function planBatches(widths: number[], batchSize: number, maxColumns = Infinity): number[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  if (!(maxColumns > 0)) throw new RangeError(`maxColumns must be positive, got ${maxColumns}`);
  const order = widths.map((width, index) => ({ index, width })).sort((a, b) => a.width - b.width);
  const batches: number[][] = [];
  let batch: number[] = [];
  for (const { index, width } of order) {
    // Sorted, so this crop is the widest so far: the batch would be padded to it.
    if (batch.length > 0 && (batch.length === batchSize || (batch.length + 1) * width > maxColumns)) {
      batches.push(batch);
      batch = [];
    }
    batch.push(index);
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** Every crop read, answers in the crops' own order. */
export async function recognizeInBatches(
  recognizer: ImageModel,
  crops: RgbImage[],
  batchSize: number,
  maxColumns: number,
  timings: StageTimings,
  trace?: RecognizerBatch[],
): Promise<RecognizedText[]> {
  // Planned at the size really sent: a batch over the recognizer's max_batch_size would be split
  // (or refused) after sorting, and the halves padded to each other's widths.
  const size = Math.min(batchSize, requestBatchCap(recognizer.model) ?? Infinity, recognizer.preprocess.maxBatch);
  const widths = crops.map((crop) => tensorWidthOf(crop, recognizer.preprocess));
  const batches = planBatches(widths, size, maxColumns);
  const answers: RecognizedText[] = new Array<RecognizedText>(crops.length);
  // One batch waiting per instance beyond those running: the instances never idle between batches,
  // and a page never fills the recognizer's queue on its own (other requests keep their turn).
  const inFlight = Math.max(1, recognizer.model.instances) + 1;
  let next = 0;
  const lane = async () => {
    while (next < batches.length) {
      const batch = batches[next++];
      const start = performance.now();
      const texts = await predictImages<'ctc'>(
        recognizer,
        batch.map((i) => crops[i]),
        timings,
      );
      trace?.push({
        crops: batch.length,
        width: Math.max(...batch.map((i) => widths[i])),
        ms: performance.now() - start,
      });
      batch.forEach((cropIndex, k) => (answers[cropIndex] = texts[k]));
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, batches.length) }, lane));
  return answers;
}

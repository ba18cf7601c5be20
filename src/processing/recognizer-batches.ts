import { requestBatchCap } from '../core/batch-size.js';
import type { RgbImage } from './image-decode.js';
import { predictImages, type ImageModel, type StageTimings } from './image-model.js';
import type { RecognizedText } from './postprocess/ctc.js';

/**
 * The crops of a page, read the way PaddleOCR's TextRecognizer batches them: sorted by aspect ratio
 * so that lines of similar length share a batch, `batchSize` per batch, each batch padded only to
 * its own widest line (up to the recognizer's preprocess.resize.max_width), and the batches sent
 * together so that every instance of the recognizer works at once. A single tensor padded to the
 * page's widest line made every short line pay for the longest and ran on one instance.
 */

/** Crop indices grouped into batches, narrowest lines first. */
export function planBatches(crops: Array<{ width: number; height: number }>, batchSize: number): number[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const order = crops
    .map((crop, index) => ({ index, ratio: crop.width / Math.max(crop.height, 1) }))
    .sort((a, b) => a.ratio - b.ratio)
    .map((entry) => entry.index);
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += batchSize) batches.push(order.slice(start, start + batchSize));
  return batches;
}

/** Every crop read, answers in the crops' own order. */
export async function recognizeInBatches(
  recognizer: ImageModel,
  crops: RgbImage[],
  batchSize: number,
  timings: StageTimings,
): Promise<RecognizedText[]> {
  // Planned at the size really sent: a batch over the recognizer's max_batch_size would be split
  // (or refused) after sorting, and the halves padded to each other's widths.
  const size = Math.min(batchSize, requestBatchCap(recognizer.model) ?? Infinity, recognizer.preprocess.maxBatch);
  const batches = planBatches(crops, size);
  const answers: RecognizedText[] = new Array<RecognizedText>(crops.length);
  // One batch waiting per instance beyond those running: the instances never idle between batches,
  // and a page never fills the recognizer's queue on its own (other requests keep their turn).
  const inFlight = Math.max(1, recognizer.model.instances) + 1;
  let next = 0;
  const lane = async () => {
    while (next < batches.length) {
      const batch = batches[next++];
      const texts = await predictImages<'ctc'>(
        recognizer,
        batch.map((i) => crops[i]),
        timings,
      );
      batch.forEach((cropIndex, k) => (answers[cropIndex] = texts[k]));
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, batches.length) }, lane));
  return answers;
}

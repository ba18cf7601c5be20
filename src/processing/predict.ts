import { unavailable } from '../protocol/errors.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import { decodeImage } from './image-decode.js';
import { imageModelOf, noTime, predictImages, timed, type PredictionOf, type StageTimings } from './image-model.js';
import { runOcrPipeline, type OcrLine } from './pipeline.js';

/** One uploaded image, still encoded, with the name messages and answers give it. */
export interface Upload {
  name: string;
  bytes: Buffer;
}

/** What one image gives: labels (`top_k`), a text (`ctc`), text boxes (`db_text_detection`) or lines (the `ocr` pipeline). */
export type Prediction = PredictionOf[keyof PredictionOf] | OcrLine[];

/** The answer of `/v2/models/{model}/predict`, and of the in-process `predict()`: one result per image, in order. */
export interface PredictAnswer<T = Prediction> {
  model_name: string;
  model_version: string;
  /** Each image as decoded (upright, after EXIF orientation). */
  images: Array<{ name: string; width: number; height: number }>;
  results: T[];
  /** Milliseconds per stage, summed over a pipeline's steps, and the total. */
  timings_ms: StageTimings & { total: number };
}

/**
 * Images in, answers out, for /predict and the in-process API alike: the model (or pipeline) is
 * checked before the images are read (`readUploads`), then every image is decoded under the pixel
 * limit and all of them go through preprocessing, runInference (so dynamic batching applies) and
 * postprocessing as one batch.
 */
export async function predictUploads(
  registry: ModelRegistry,
  name: string,
  version: string | undefined,
  readUploads: () => Promise<Upload[]>,
  options: { maxImagePixels: number },
): Promise<PredictAnswer> {
  const started = performance.now();
  const found = registry.resolve(name, version);
  const pipeline = found.spec.config.pipeline;
  if (pipeline !== undefined && found.state !== 'READY') {
    throw unavailable(`pipeline ${found.name} is unavailable: ${found.reason ?? 'its steps are still loading'}`);
  }
  // Check the model before reading the images: a model that cannot take images says so first.
  const model = pipeline === undefined ? imageModelOf(await registry.acquire(name, version)) : undefined;

  const uploads = await readUploads();
  const timings = noTime();
  const images = await timed(timings, 'decode', () =>
    Promise.all(uploads.map((upload) => decodeImage(upload.bytes, upload.name, options.maxImagePixels))),
  );
  const results: Prediction[] =
    model === undefined
      ? await runOcrPipeline(registry, pipeline!, images, timings)
      : await predictImages(model, images, timings);
  return {
    model_name: found.name,
    model_version: String(found.version),
    images: uploads.map((upload, i) => ({ name: upload.name, width: images[i].width, height: images[i].height })),
    results,
    timings_ms: roundAll({ ...timings, total: performance.now() - started }),
  };
}

function roundAll<T extends Record<string, number>>(timings: T): T {
  return Object.fromEntries(Object.entries(timings).map(([stage, ms]) => [stage, Math.round(ms * 100) / 100])) as T;
}

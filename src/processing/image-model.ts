import { readFileSync } from 'node:fs';
import type { FileRef, PostprocessConfig } from '../config/processing-config.js';
import type { NamedTensor } from '../protocol/datatypes.js';
import { invalidArgument, unavailable, type ServeError } from '../protocol/errors.js';
import type { ModelVersion } from '../repository/model-version.js';
import { resolveSource } from '../repository/scan.js';
import { requestBatchCap } from '../core/batch-size.js';
import { runInference, type ReadyModel } from '../core/inference.js';
import type { RgbImage } from './image-decode.js';
import { reducedOutputName } from '../runtime/output-reductions.js';
import { ctcClasses, ctcDecodeBest, type RecognizedText } from './postprocess/ctc.js';
import { DB_DEFAULTS, detectTextBoxes, type DbOptions, type TextBox } from './postprocess/db-text-detection.js';
import { topK, type ScoredLabel, type TopKOptions } from './postprocess/top-k.js';
import { compilePreprocess, preprocessImages, type Placement, type PreprocessPlan } from './preprocess.js';

/** Milliseconds per stage of a /predict request (summed over the steps of a pipeline). */
export interface StageTimings {
  decode: number;
  preprocess: number;
  queue: number;
  infer: number;
  postprocess: number;
}

export const noTime = (): StageTimings => ({ decode: 0, preprocess: 0, queue: 0, infer: 0, postprocess: 0 });

/** Adds the time `work` takes to one stage. */
export async function timed<T>(
  timings: StageTimings,
  stage: keyof StageTimings,
  work: () => T | Promise<T>,
): Promise<T> {
  const start = performance.now();
  try {
    return await work();
  } finally {
    timings[stage] += performance.now() - start;
  }
}

type Postprocessor =
  | { type: 'top_k'; options: TopKOptions }
  | { type: 'ctc'; classes: string[]; blankIndex: number; sumsToOne: boolean }
  | { type: 'db_text_detection'; options: DbOptions };

/** The answer for one image, by postprocess type. */
export interface PredictionOf {
  top_k: ScoredLabel[];
  ctc: RecognizedText;
  db_text_detection: TextBox[];
}

/** A ready model with its image preprocessing and postprocessing resolved. */
export interface ImageModel {
  model: ReadyModel;
  preprocess: PreprocessPlan;
  postprocess: Postprocessor;
}

const compiled = new WeakMap<ModelVersion, ImageModel>();

/**
 * INVALID_ARGUMENT for a model without `preprocess` or `postprocess` asked for images (the request is
 * wrong, and retrying will not help), or undefined when it has both or is a pipeline. `alternative`
 * says how to send it tensors instead; `configName` where its settings came from.
 */
export function cannotTakeImages(
  model: Pick<ModelVersion, 'name' | 'spec'>,
  alternative: string,
  configName = 'config.yaml',
): ServeError | undefined {
  const { config } = model.spec;
  if (config.pipeline !== undefined) return undefined;
  const missing = (['preprocess', 'postprocess'] as const).filter((key) => config[key] === undefined);
  if (missing.length === 0) return undefined;
  return invalidArgument(
    `model ${model.name} has no ${missing.join(' and ')} in its ${configName}, so it cannot take images; see docs/images.md, or ${alternative}`,
  );
}

/** The model's `preprocess` and `postprocess`, checked and with their files read, once per loaded version. */
export function imageModelOf(model: ReadyModel): ImageModel {
  let found = compiled.get(model);
  if (found === undefined) {
    const { preprocess, postprocess } = model.spec.config;
    if (preprocess === undefined || postprocess === undefined) {
      throw cannotTakeImages(model, `send tensors to /v2/models/${model.name}/infer`);
    }
    const plan = compilePreprocess(preprocess, model.loaded.signature.inputs, model.name);
    // A batch bound in config.yaml (input max_dims[0]) splits /predict batches as a fixed batch size does.
    const batchBound = model.inputBounds.get(plan.input)?.maxDims[0] ?? -1;
    if (batchBound > 0) plan.maxBatch = Math.min(plan.maxBatch, batchBound);
    found = { model, preprocess: plan, postprocess: compilePostprocess(postprocess, model) };
    compiled.set(model, found);
  }
  return found;
}

function compilePostprocess(config: PostprocessConfig, model: ReadyModel): Postprocessor {
  switch (config.type) {
    case 'top_k': {
      const options: TopKOptions = { k: config.k ?? 5 };
      if (config.labels_file !== undefined) options.labels = readLines(config.labels_file, model, 'labels_file');
      if (config.softmax !== undefined) options.softmax = config.softmax;
      return { type: 'top_k', options };
    }
    case 'ctc': {
      const blankIndex = config.blank_index ?? 0;
      const text = readText(config.dictionary_file, model, 'dictionary_file');
      const classes = ctcClasses(text, { blankIndex, appendSpace: config.append_space ?? true });
      return { type: 'ctc', classes, blankIndex, sumsToOne: config.softmax_output ?? false };
    }
    case 'db_text_detection':
      return {
        type: 'db_text_detection',
        options: {
          threshold: config.threshold ?? DB_DEFAULTS.threshold,
          boxThreshold: config.box_threshold ?? DB_DEFAULTS.boxThreshold,
          unclipRatio: config.unclip_ratio ?? DB_DEFAULTS.unclipRatio,
          maxCandidates: config.max_candidates ?? DB_DEFAULTS.maxCandidates,
          minSize: config.min_size ?? DB_DEFAULTS.minSize,
        },
      };
  }
}

function readText(file: FileRef, model: ReadyModel, key: string): string {
  try {
    return readFileSync(resolveSource(file, model.spec.configDir), 'utf8');
  } catch (error) {
    throw unavailable(`model ${model.name}: postprocess.${key} cannot be read: ${(error as Error).message}`);
  }
}

function readLines(file: FileRef, model: ReadyModel, key: string): string[] {
  return readText(file, model, key)
    .split(/\r?\n/)
    .filter((line, i, all) => line !== '' || i < all.length - 1);
}

/** The model as a step of a pipeline: its postprocess must be the kind the step needs. */
export function imageModelFor<T extends keyof PredictionOf>(model: ReadyModel, type: T, role: string): ImageModel {
  const found = imageModelOf(model);
  if (found.postprocess.type !== type) {
    throw unavailable(
      `model ${model.name} cannot be the ${role} of a pipeline: its postprocess.type is ${found.postprocess.type}, expected ${type}`,
    );
  }
  return found;
}

/**
 * Preprocesses, runs and postprocesses images as one batch (split where the model's batch size is
 * fixed or capped by max_batch_size), through runInference like any other request; answers one prediction per image.
 * T is the model's postprocess type, as imageModelFor checked it.
 */
export async function predictImages<T extends keyof PredictionOf>(
  imageModel: ImageModel,
  images: RgbImage[],
  timings: StageTimings,
): Promise<Array<PredictionOf[T]>> {
  const { model, preprocess } = imageModel;
  const answers: Array<PredictionOf[T]> = [];
  // Chunks no larger than the model takes: its fixed batch dimension, or max_batch_size from config.yaml.
  const perRequest = Math.min(preprocess.maxBatch, requestBatchCap(model) ?? Infinity, images.length);
  for (let start = 0; start < images.length; start += perRequest) {
    const chunk = images.slice(start, start + perRequest);
    const { tensor, placements } = await timed(timings, 'preprocess', () => preprocessImages(chunk, preprocess));
    const reduced = bestClassOutputs(imageModel);
    const { response, timings: run } = await runInference(
      model,
      { inputs: [{ name: tensor.name, datatype: tensor.datatype, shape: tensor.shape }] },
      () => [tensor],
      reduced === undefined ? {} : { reducedOutputs: reduced },
    );
    timings.queue += run.queueMs;
    timings.infer += run.computeMs;
    const batch = await timed(timings, 'postprocess', () =>
      postprocessBatch(imageModel.postprocess, response.outputs, placements),
    );
    answers.push(...(batch as Array<PredictionOf[T]>));
  }
  return answers;
}

/**
 * For CTC: the best class and its probability per step, reduced in the worker (output-reductions.ts),
 * instead of every class's probability.
 */
function bestClassOutputs({ model, postprocess }: ImageModel): string[] | undefined {
  if (postprocess.type !== 'ctc') return undefined;
  const { name: output, dims } = model.loaded.signature.outputs[0];
  // A class count the file fixes is checked here; an open one, by each decoded index.
  const classes = dims[dims.length - 1];
  if (typeof classes === 'number' && classes !== postprocess.classes.length) {
    throw unavailable(
      `output ${output} has ${classes} classes but the CTC dictionary gives ${postprocess.classes.length} (blank + lines + space)`,
    );
  }
  return [
    reducedOutputName(output, 'argmax', postprocess.sumsToOne),
    reducedOutputName(output, 'max', postprocess.sumsToOne),
  ];
}

function postprocessBatch(
  postprocess: Postprocessor,
  outputs: NamedTensor[],
  placements: Placement[],
): Array<PredictionOf[keyof PredictionOf]> {
  const output = outputs[0];
  const data = output.data as Float32Array;
  const { shape } = output;
  switch (postprocess.type) {
    case 'top_k':
      return topK(
        data,
        shape[0],
        shape.slice(1).reduce((a, b) => a * b, 1),
        postprocess.options,
      );
    case 'ctc': {
      // N×T best classes and their probabilities (bestClassOutputs).
      const [rows, steps] = shape;
      try {
        return ctcDecodeBest(
          output.data as Int32Array,
          outputs[1].data as Float32Array,
          rows,
          steps,
          postprocess.classes,
          postprocess.blankIndex,
        );
      } catch (error) {
        throw unavailable(
          `output ${output.name} of the CTC recognizer does not match its dictionary (blank + lines + space, ${postprocess.classes.length} classes): ${(error as Error).message}`,
        );
      }
    }
    case 'db_text_detection': {
      // N×1×H×W: one probability map per image.
      const [height, width] = shape.slice(-2);
      const plane = width * height;
      return placements.map((placement, n) =>
        detectTextBoxes(data.subarray(n * plane, (n + 1) * plane), width, placement, postprocess.options),
      );
    }
  }
}

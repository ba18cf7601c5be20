/**
 * The image keys of `config.yaml`: `preprocess`, `postprocess` and `pipeline`. Types and JSON schema
 * fragments live here; model-config.ts plugs them into the one config schema. docs/images.md
 * describes every key.
 */

/** A file given by path (relative to config.yaml) or inside an installed npm package, like `source`. */
export type FileRef = string | { package: string; file: string };

export type ResizeConfig =
  /** Exactly width×height, aspect ratio not kept. */
  | { mode: 'stretch'; width?: number; height?: number }
  /** Scaled to fit inside width×height, aspect kept, centred; the rest is padding. */
  | { mode: 'fit_pad'; width?: number; height?: number }
  /** Shorter side scaled to `shorter_side`, then the centre width×height cut out (ImageNet evaluation). */
  | { mode: 'shorter_side_crop'; shorter_side: number; width?: number; height?: number }
  /** Height fixed, width in proportion (text lines); padded on the right to min_width and to the batch's widest. */
  | { mode: 'fixed_height'; height?: number; min_width?: number; max_width?: number; multiple_of?: number }
  /** Longer side at most max_side, each side rounded to a multiple (text detection). */
  | { mode: 'limit_side'; max_side?: number; multiple_of?: number };

export type ResizeMode = ResizeConfig['mode'];

export interface PreprocessConfig {
  /** The model input the image feeds (default: the model's only input). */
  input?: string;
  /** Default: stretch to the model's static input size. */
  resize?: ResizeConfig;
  /** Channel order in the tensor (default rgb). */
  channel_order?: 'rgb' | 'bgr';
  /** Pixel values 0–255 are multiplied by this first (default 1/255). */
  scale?: number;
  /** Subtracted per tensor channel, after scaling, in channel_order (default 0). */
  mean?: [number, number, number];
  /** Divided per tensor channel, after the mean (default 1). */
  std?: [number, number, number];
  /** Tensor layout (default NCHW). */
  layout?: 'NCHW' | 'NHWC';
}

export type PostprocessConfig =
  | { type: 'top_k'; k?: number; labels_file?: FileRef; softmax?: boolean }
  | {
      type: 'ctc';
      dictionary_file: FileRef;
      blank_index?: number;
      append_space?: boolean;
      /** The output is a softmax (each step sums to 1): decoding may stop a step's scan early (default false). */
      softmax_output?: boolean;
    }
  | {
      type: 'db_text_detection';
      threshold?: number;
      box_threshold?: number;
      unclip_ratio?: number;
      max_candidates?: number;
      min_size?: number;
    };

export type PostprocessType = PostprocessConfig['type'];

/** The OCR pipeline: detector → crops → orientation (optional) → recognizer, each a model of the repository. */
export interface PipelineConfig {
  type: 'ocr';
  detector: string;
  recognizer: string;
  orientation?: string;
  /**
   * Whether single lines are turned when the orientation model reads them upside down (default
   * false: the page is turned as a whole, by the votes of its lines; see docs/images.md).
   */
  line_orientation?: boolean;
  /** With line_orientation, a crop is turned when the orientation model says 180 with at least this score (default 0.9). */
  orientation_threshold?: number;
  /** Crops per recognizer batch, sorted by width so each batch is padded only to its own widest (default 6). */
  recognizer_batch_size?: number;
  /**
   * Most tensor columns in one recognizer batch (crops × the batch's padded width); a wider crop goes
   * alone (default 2048). Wide lines batched together cost more per column than each alone.
   */
  recognizer_batch_columns?: number;
  /** Lines read with a lower confidence are left out (default 0.5). */
  min_confidence?: number;
}

/** Models a pipeline runs, in order. */
export function pipelineSteps(pipeline: PipelineConfig): string[] {
  return [
    pipeline.detector,
    ...(pipeline.orientation === undefined ? [] : [pipeline.orientation]),
    pipeline.recognizer,
  ];
}

const positiveInt = { type: 'integer', minimum: 1 } as const;
const nonNegativeInt = { type: 'integer', minimum: 0 } as const;
const probability = { type: 'number', minimum: 0, maximum: 1 } as const;
const triple = { type: 'array', items: { type: 'number' }, minItems: 3, maxItems: 3 } as const;

export const FILE_REF_SCHEMA = {
  description: 'a file path, or {package: NAME, file: PATH inside that package}',
  oneOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object',
      additionalProperties: false,
      required: ['package', 'file'],
      properties: { package: { type: 'string', minLength: 1 }, file: { type: 'string', minLength: 1 } },
    },
  ],
} as const;

/** One branch of a tagged union: `tag` holds `value`, and only these keys are allowed beside it. */
const tagged = (tag: 'mode' | 'type', value: string, properties: Record<string, object>, required: string[] = []) => ({
  type: 'object',
  additionalProperties: false,
  required: [tag, ...required],
  properties: { [tag]: { const: value }, ...properties },
});
const resizeMode = (mode: ResizeMode, properties: Record<string, object>, required: string[] = []) =>
  tagged('mode', mode, properties, required);

export const PREPROCESS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    input: { type: 'string', minLength: 1 },
    resize: {
      description:
        '{mode: stretch|fit_pad, width?, height?}, {mode: shorter_side_crop, shorter_side, width?, height?}, ' +
        '{mode: fixed_height, height?, min_width?, max_width?, multiple_of?} or {mode: limit_side, max_side?, multiple_of?}',
      oneOf: [
        resizeMode('stretch', { width: positiveInt, height: positiveInt }),
        resizeMode('fit_pad', { width: positiveInt, height: positiveInt }),
        resizeMode('shorter_side_crop', { shorter_side: positiveInt, width: positiveInt, height: positiveInt }, [
          'shorter_side',
        ]),
        resizeMode('fixed_height', {
          height: positiveInt,
          min_width: positiveInt,
          max_width: positiveInt,
          multiple_of: positiveInt,
        }),
        resizeMode('limit_side', { max_side: positiveInt, multiple_of: positiveInt }),
      ],
    },
    channel_order: { enum: ['rgb', 'bgr'] },
    scale: { type: 'number', exclusiveMinimum: 0 },
    mean: triple,
    std: { ...triple, items: { type: 'number', exclusiveMinimum: 0 } },
    layout: { enum: ['NCHW', 'NHWC'] },
  },
} as const;

const postprocessType = (type: PostprocessType, properties: Record<string, object>, required: string[] = []) =>
  tagged('type', type, properties, required);

export const POSTPROCESS_SCHEMA = {
  description:
    '{type: top_k, k?, labels_file?, softmax?}, {type: ctc, dictionary_file, blank_index?, append_space?, softmax_output?} or ' +
    '{type: db_text_detection, threshold?, box_threshold?, unclip_ratio?, max_candidates?, min_size?}',
  oneOf: [
    postprocessType('top_k', { k: positiveInt, labels_file: FILE_REF_SCHEMA, softmax: { type: 'boolean' } }),
    postprocessType(
      'ctc',
      {
        dictionary_file: FILE_REF_SCHEMA,
        blank_index: nonNegativeInt,
        append_space: { type: 'boolean' },
        softmax_output: { type: 'boolean' },
      },
      ['dictionary_file'],
    ),
    postprocessType('db_text_detection', {
      threshold: probability,
      box_threshold: probability,
      unclip_ratio: { type: 'number', minimum: 0 },
      max_candidates: positiveInt,
      min_size: nonNegativeInt,
    }),
  ],
} as const;

const modelName = { type: 'string', minLength: 1 } as const;

export const PIPELINE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'detector', 'recognizer'],
  properties: {
    type: { enum: ['ocr'] },
    detector: modelName,
    recognizer: modelName,
    orientation: modelName,
    line_orientation: { type: 'boolean' },
    orientation_threshold: probability,
    recognizer_batch_size: positiveInt,
    recognizer_batch_columns: positiveInt,
    min_confidence: probability,
  },
} as const;

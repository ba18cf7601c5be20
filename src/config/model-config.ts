import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import {
  FILE_REF_SCHEMA,
  PIPELINE_SCHEMA,
  POSTPROCESS_SCHEMA,
  PREPROCESS_SCHEMA,
  type PipelineConfig,
  type PostprocessConfig,
  type PreprocessConfig,
} from './processing-config.js';
import { INPUT_CONFIG_SCHEMA, type InputConfig } from './input-bounds.js';

/**
 * `config.yaml` of one model. Every key is optional: what is missing comes from the ONNX file
 * or from the defaults in runtime/session-settings.ts. Unknown keys are errors that name the key,
 * so a typo never silently falls back to a default.
 */
export interface ModelConfig {
  /** Model file for a model without version folders: a path relative to config.yaml, or a file inside an installed npm package. */
  source?: string | { package: string; file: string };
  /**
   * `float` (default) serves the model file as it is; `int8` serves an int8 variant that the server
   * builds from it on first load with its own quantizer (static QDQ, calibrated on `quantization.calibration`)
   * and keeps in the cache folder (`--cache-dir`) for the next start.
   */
  precision?: 'float' | 'int8';
  /** How the int8 variant is built (only with `precision: int8`). */
  quantization?: QuantizationConfig;
  /**
   * Whether the served graph is simplified first (constant scales and shifts folded into
   * convolutions, hard-swish as one HardSwish; exact up to float rounding). With precision float
   * (default false) the server builds the simplified copy on first load and keeps it in the cache
   * folder; with int8 (default true) the quantizer simplifies before quantizing, as
   * `quantization.simplify` says.
   */
  simplify?: boolean;
  /** Version number given to `source` (default 1). */
  version?: number;
  /** File name inside each version folder (default model.onnx). */
  default_model_filename?: string;
  /** Which versions of the repository are loaded (default: all). */
  version_policy?: { latest: number } | { all: Record<string, never> } | { specific: number[] };
  /** Worker threads, each with its own session (default: usable cores / intra-op threads, at least 1). */
  instances?: number | 'auto';
  /**
   * Whether a version folder holding ONNX test data sets (test_data_set_N) is checked against them
   * on load, and with which tolerances (default: true, atol 1e-4, rtol 1e-3). false serves it unchecked.
   */
  verify?: boolean | { atol?: number; rtol?: number };
  session?: SessionConfig;
  warmup?: WarmupConfig;
  /** Per input: Triton's dims (-1 varies, batch included) and an upper bound for each varying dimension. */
  input?: InputConfig[];
  /** Largest batch (items along dimension 0) the dynamic batcher forms; 0 turns batching off (default 8). */
  max_batch_size?: number;
  dynamic_batching?: DynamicBatchingConfig;
  /** p95 latency (ms, end to end) above which the model's status is degraded and requests are logged as slow (default 150). */
  latency_alert_ms?: number;
  /** How POST /predict turns an image into the model's input tensor. */
  preprocess?: PreprocessConfig;
  /** How POST /predict turns the model's output into an answer. */
  postprocess?: PostprocessConfig;
  /** A model made of other models of the repository; such a folder has no ONNX file. */
  pipeline?: PipelineConfig;
  /**
   * Labels files by output name (one label per line, relative to the model folder), as Triton's
   * output `label_filename`: the labels of the classification extension.
   */
  label_filename?: Record<string, string>;
}

/** The quantizer's settings for `precision: int8`: those of `onnx-serve quantize`, with the same defaults. */
export interface QuantizationConfig {
  /** Folder of calibration images (run through `preprocess`), test data sets or .npy/.npz files, relative to config.yaml (default `calibration`). */
  calibration?: string;
  /** Range of each activation: min-max (default) or a percentile of its values. */
  method?: 'minmax' | 'percentile';
  /** With method percentile: the percent of values the range keeps (default 99.999). */
  percentile?: number;
  /** One weight scale per output channel (default true). */
  per_channel?: boolean;
  /** 7-bit weights, which AVX2 without VNNI needs to avoid overflow (default true). */
  reduce_range?: boolean;
  /** Node names or op types left in float. */
  exclude?: string[];
  /** Fold constant scales and shifts into convolutions and hard-swish chains into HardSwish first (default true). */
  simplify?: boolean;
  /** Most calibration samples used (default 100). */
  max_samples?: number;
}

/** Triton's dynamic_batching block; one of the two delay keys at most. */
export interface DynamicBatchingConfig {
  max_queue_delay_microseconds?: number;
  max_queue_delay_ms?: number;
  /** Batch sizes worth sending at once, without waiting out the delay for a full batch. */
  preferred_batch_size?: number[];
  /** Requests waiting for an instance; one more is answered 503 at once (default 512). */
  max_queue_size?: number;
  /** A queued request older than this is dropped with 504 before it runs; 0 = no deadline (default). */
  default_timeout_microseconds?: number;
  /** Whether a request's `timeout` parameter may shorten the default (never lengthen it); default true. */
  allow_timeout_override?: boolean;
}

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';
export type ExecutionProviderName = 'cuda' | 'tensorrt' | 'webgpu' | 'cpu';

export interface SessionConfig {
  graph_optimization_level?: GraphOptimizationLevel;
  intra_op_threads?: number | 'auto';
  inter_op_threads?: number;
  execution_mode?: 'sequential' | 'parallel';
  enable_cpu_mem_arena?: boolean;
  enable_mem_pattern?: boolean;
  /**
   * Whether idle intra/inter-op threads busy-wait for the next run (onnxruntime's
   * session.intra_op.allow_spinning). Default false: spinning threads take the cores the main thread
   * and other instances need (bench/RESULTS.md).
   */
  allow_spinning?: boolean;
  /** In order of preference; the first that creates a session is used. */
  execution_providers?: ExecutionProviderName[];
  /** Write the optimized graph here (relative to config.yaml) when the session is created. */
  optimized_model_path?: string;
  /** onnxruntime's own log level: 0 verbose … 4 fatal (default 2, warnings). */
  log_severity_level?: 0 | 1 | 2 | 3 | 4;
}

export interface WarmupConfig {
  /** Runs per instance before the model reports ready (default 10; 0 turns warmup off). */
  runs?: number;
  /** Values for symbolic dimensions by name, e.g. {"batch": 1}. */
  dims?: Record<string, number>;
  /** Value for a dynamic first dimension without an entry in `dims` (default 1). */
  batch_dim?: number;
  /** Value for any other dynamic dimension without an entry in `dims` (default 32). */
  other_dim?: number;
  /** Per input: a full shape, and optionally the data (flat, row-major); supplied data must run. */
  inputs?: Record<string, { shape?: number[]; data?: Array<number | string | boolean> }>;
}

const positiveInt = { type: 'integer', minimum: 1 } as const;
const nonNegativeInt = { type: 'integer', minimum: 0 } as const;

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    source: FILE_REF_SCHEMA,
    version: positiveInt,
    default_model_filename: { type: 'string', minLength: 1, pattern: '^[^/\\\\]+$' },
    version_policy: {
      description: 'one of {latest: N}, {all: {}}, {specific: [N, ...]} (N a positive integer)',
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['latest'], properties: { latest: positiveInt } },
        {
          type: 'object',
          additionalProperties: false,
          required: ['all'],
          properties: { all: { type: 'object', additionalProperties: false } },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['specific'],
          properties: { specific: { type: 'array', items: positiveInt, minItems: 1 } },
        },
      ],
    },
    instances: { description: 'a positive integer or "auto"', oneOf: [positiveInt, { const: 'auto' }] },
    verify: {
      description: 'true, false or {atol: N, rtol: N} (N ≥ 0)',
      oneOf: [
        { type: 'boolean' },
        {
          type: 'object',
          additionalProperties: false,
          properties: { atol: { type: 'number', minimum: 0 }, rtol: { type: 'number', minimum: 0 } },
        },
      ],
    },
    session: {
      type: 'object',
      additionalProperties: false,
      properties: {
        graph_optimization_level: { enum: ['disabled', 'basic', 'extended', 'all'] },
        intra_op_threads: { description: 'a positive integer or "auto"', oneOf: [positiveInt, { const: 'auto' }] },
        inter_op_threads: positiveInt,
        execution_mode: { enum: ['sequential', 'parallel'] },
        enable_cpu_mem_arena: { type: 'boolean' },
        enable_mem_pattern: { type: 'boolean' },
        allow_spinning: { type: 'boolean' },
        execution_providers: {
          type: 'array',
          minItems: 1,
          uniqueItems: true,
          items: { enum: ['cuda', 'tensorrt', 'webgpu', 'cpu'] },
        },
        optimized_model_path: { type: 'string', minLength: 1 },
        log_severity_level: { enum: [0, 1, 2, 3, 4] },
      },
    },
    input: INPUT_CONFIG_SCHEMA,
    max_batch_size: nonNegativeInt,
    dynamic_batching: {
      type: 'object',
      additionalProperties: false,
      properties: {
        max_queue_delay_microseconds: nonNegativeInt,
        max_queue_delay_ms: { type: 'number', minimum: 0 },
        preferred_batch_size: { type: 'array', items: positiveInt, minItems: 1, uniqueItems: true },
        max_queue_size: positiveInt,
        default_timeout_microseconds: nonNegativeInt,
        allow_timeout_override: { type: 'boolean' },
      },
    },
    warmup: {
      type: 'object',
      additionalProperties: false,
      properties: {
        runs: nonNegativeInt,
        dims: { type: 'object', additionalProperties: positiveInt },
        batch_dim: positiveInt,
        other_dim: positiveInt,
        inputs: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            properties: {
              shape: { type: 'array', items: nonNegativeInt },
              data: { type: 'array', items: { type: ['number', 'string', 'boolean'] } },
            },
          },
        },
      },
    },
    latency_alert_ms: { type: 'number', exclusiveMinimum: 0 },
    preprocess: PREPROCESS_SCHEMA,
    postprocess: POSTPROCESS_SCHEMA,
    pipeline: PIPELINE_SCHEMA,
    label_filename: { type: 'object', additionalProperties: { type: 'string', minLength: 1 } },
    precision: { enum: ['float', 'int8'] },
    simplify: { type: 'boolean' },
    quantization: {
      type: 'object',
      additionalProperties: false,
      properties: {
        calibration: { type: 'string', minLength: 1 },
        method: { enum: ['minmax', 'percentile'] },
        percentile: { type: 'number', exclusiveMinimum: 0, maximum: 100 },
        per_channel: { type: 'boolean' },
        reduce_range: { type: 'boolean' },
        exclude: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
        simplify: { type: 'boolean' },
        max_samples: positiveInt,
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
const validate = ajv.compile(SCHEMA);

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Validates a parsed config object; throws a ConfigError listing every problem with its path. */
export function validateModelConfig(value: unknown, where: string): ModelConfig {
  const config = value ?? {};
  const problems = validate(config) ? crossFieldProblems(config as ModelConfig) : describeErrors(validate.errors ?? []);
  if (problems.length === 0) return config as ModelConfig;
  throw new ConfigError(`${where}: ${problems.join('; ')}`);
}

/** Rules that span keys, which the schema cannot say. */
function crossFieldProblems(config: ModelConfig): string[] {
  const problems: string[] = [];
  const batching = config.dynamic_batching ?? {};
  if (batching.max_queue_delay_microseconds !== undefined && batching.max_queue_delay_ms !== undefined) {
    problems.push('dynamic_batching sets both max_queue_delay_microseconds and max_queue_delay_ms; set one');
  }
  if (config.quantization !== undefined && config.precision !== 'int8') {
    problems.push('quantization is set but precision is not int8; set precision: int8 or remove quantization');
  }
  const { simplify } = config;
  if (
    simplify !== undefined &&
    config.quantization?.simplify !== undefined &&
    config.quantization.simplify !== simplify
  ) {
    problems.push(`simplify is ${simplify} but quantization.simplify is ${!simplify}; set one of them`);
  }
  if (config.quantization?.percentile !== undefined && config.quantization.method !== 'percentile') {
    problems.push('quantization.percentile needs quantization.method: percentile');
  }
  if (config.precision === 'int8' && config.pipeline !== undefined) {
    problems.push('a pipeline runs other models; set precision on those models instead');
  }
  const max = config.max_batch_size;
  const tooLarge = (batching.preferred_batch_size ?? []).filter((size) => max !== undefined && size > max);
  if (tooLarge.length > 0) {
    problems.push(`dynamic_batching.preferred_batch_size has ${tooLarge.join(', ')}, above max_batch_size ${max}`);
  }
  return problems;
}

export async function readModelConfig(path: string): Promise<ModelConfig> {
  const text = await readFile(path, 'utf8');
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${path}: not valid YAML: ${(error as Error).message}`);
  }
  return validateModelConfig(parsed, path);
}

/**
 * Ajv reports every branch of a oneOf; we keep the most specific message per location so that a
 * user reads "unknown key" or "must be one of …" rather than a list of schema internals.
 */
function describeErrors(errors: ErrorObject[]): string[] {
  // A failed oneOf reports every branch's complaint; one line saying what the union allows reads better.
  const unions = errors.filter((e) => e.keyword === 'oneOf');
  const insideUnion = (e: ErrorObject) => unions.some((u) => e !== u && e.schemaPath.startsWith(`${u.schemaPath}/`));
  const messages = new Set<string>();
  for (const error of errors) {
    if (insideUnion(error)) continue;
    const path = error.instancePath === '' ? '(top level)' : error.instancePath.slice(1).replaceAll('/', '.');
    const params = error.params as Record<string, unknown>;
    switch (error.keyword) {
      case 'oneOf':
        messages.add(`${path} must be ${String(error.parentSchema?.description ?? 'one of the allowed forms')}`);
        break;
      case 'additionalProperties': {
        const key = String(params.additionalProperty);
        const allowed = Object.keys((error.parentSchema?.properties as object | undefined) ?? {});
        const where = error.instancePath === '' ? key : `${path}.${key}`;
        messages.add(`unknown key "${where}"${allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ''}`);
        break;
      }
      case 'enum':
        messages.add(
          `${path} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
        );
        break;
      case 'required':
        messages.add(`${path} is missing required key "${String(params.missingProperty)}"`);
        break;
      default:
        messages.add(`${path} ${error.message ?? 'is invalid'}`);
    }
  }
  return [...messages];
}

/**
 * The in-process API: models loaded into the caller's own process, on the same registry, worker
 * pool, validation and errors as the server. Inference runs on worker threads, never on the
 * caller's event loop.
 */

import { pino, type Logger } from 'pino';
import { validateModelConfig, type ModelConfig } from '../config/model-config.js';
import { DEFAULT_MAX_IMAGE_PIXELS } from '../processing/image-decode.js';
import { cannotTakeImages } from '../processing/image-model.js';
import { predictUploads, type PredictAnswer, type Prediction } from '../processing/predict.js';
import { invalidArgument, notFound, unavailable } from '../protocol/errors.js';
import type { InferenceRequestHeader } from '../protocol/json-codec.js';
import { toInferResult, toNamedTensors, type InferInputs, type InferResult } from '../protocol/typed-tensors.js';
import { ModelRegistry } from '../repository/model-registry.js';
import { parseByteSize } from '../repository/on-demand.js';
import { notReady, type ModelState } from '../repository/model-version.js';
import { scanRepository, specsForFiles, type ScanResult } from '../repository/scan.js';
import { cpuBudget } from '../runtime/cpu.js';
import { runInference } from '../core/inference.js';
import { modelMetadata } from '../core/model-metadata.js';
import { attachRegistry, registryOf } from '../core/repository-handle.js';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../core/request-limits.js';

export interface LoadOptions {
  /** A pino logger for load events and failures (default: silent). */
  logger?: Logger;
  /** `predict()` refuses an image with more pixels than this (PAYLOAD_TOO_LARGE); the server's `--max-image-pixels`. Default 64 000 000. */
  maxImagePixels?: number;
  /**
   * `infer()` refuses more tensors, larger tensors or longer BYTES elements than this (PAYLOAD_TOO_LARGE),
   * as the server does; defaults: DEFAULT_REQUEST_LIMITS (`maxHeaderSize` is HTTP's alone).
   */
  limits?: Partial<RequestLimits>;
  /** Where int8 variants (`precision: int8`) are built and kept; the server's `--cache-dir`. */
  cacheDir?: string;
  /** Worker threads shared by the models' sessions, as the server's `--workers` (default: the usable cores). */
  workers?: number;
  /** How far below the calling thread the worker threads run, as the server's `--worker-nice` (default DEFAULT_WORKER_NICE). */
  workerNice?: number;
}

export interface LoadRepositoryOptions extends LoadOptions {
  /** Load only these models of the repository (default: all). */
  models?: string[];
  /**
   * The server's `--model-memory-budget`: bytes, or a size such as `'2GB'` or `'512MB'` (binary
   * units). Models are then listed UNLOADED and loaded by their first `infer()` or `predict()`; the
   * least recently used idle ones are unloaded to stay within it (pipelines and the models they run
   * load at once). See docs/operations.md.
   */
  modelMemoryBudget?: number | string;
}

export interface LoadModelOptions extends LoadOptions {
  /** The .onnx file. */
  path: string;
  /** The model's name (default: the file name without .onnx). */
  name?: string;
  /** The same settings as a model's config.yaml; relative paths in it resolve against the file's folder. */
  config?: ModelConfig;
}

export interface InferCallOptions {
  /** Outputs to return, in this order (default: all, in model order). */
  outputs?: string[];
  /** Echoed as the result's id. */
  id?: string;
  /**
   * Hand the inputs' memory to the worker instead of copying it: faster for big tensors, but the
   * input arrays are detached (length 0) afterwards.
   */
  transfer?: boolean;
}

/** An encoded image (JPEG, PNG, WebP, GIF, TIFF, AVIF): a file's bytes. */
export type ImageBytes = Uint8Array | Buffer;

/** The answer of `predict()`: the JSON `/v2/models/{model}/predict` answers, one result per image. */
export type PredictResult<T = Prediction> = PredictAnswer<T>;

/** What a loaded model declares: the Open Inference Protocol's model metadata, plus what runs it. */
export type ModelMetadata = ReturnType<typeof modelMetadata>;

/** One model version, ready to infer. */
export interface Model {
  readonly name: string;
  readonly version: number;
  readonly metadata: ModelMetadata;
  /** Runs the model; throws ServeError (INVALID_ARGUMENT, UNAVAILABLE, OVERLOADED, TIMEOUT, INTERNAL). */
  infer(inputs: InferInputs, options?: InferCallOptions): Promise<InferResult>;
  /**
   * Runs encoded images through the model's `preprocess` and `postprocess` (or its pipeline, such as
   * `ocr`), exactly as `/v2/models/{model}/predict` does: decoded under the pixel limit, preprocessed,
   * inferred through the dynamic batcher, postprocessed. One image or several (one batch); one result
   * per image. `T` is what each image gives: `ScoredLabel[]` (`top_k`), `RecognizedText` (`ctc`),
   * `TextBox[]` (`db_text_detection`) or `OcrLine[]` (the `ocr` pipeline).
   *
   * Throws ServeError: INVALID_ARGUMENT for a model without `preprocess`/`postprocess` or an image
   * that cannot be read, UNSUPPORTED_MEDIA_TYPE for bytes that are no image format it decodes,
   * PAYLOAD_TOO_LARGE over the pixel limit, and as `infer()` does.
   */
  predict<T = Prediction>(images: ImageBytes | ImageBytes[]): Promise<PredictResult<T>>;
}

/** A model loaded on its own, which owns its worker threads. */
export interface LoadedModel extends Model {
  /** Stops the model's worker threads and releases its sessions. */
  close(): Promise<void>;
}

export interface ModelStatus {
  name: string;
  version: number;
  state: ModelState;
  reason?: string;
}

/** Every model of a repository folder, loaded and warmed up. */
export class Repository {
  readonly #registry: ModelRegistry;
  readonly #limits: ModelLimits;

  /**
   * Use loadRepository().
   * @internal
   */
  constructor(registry: ModelRegistry, options: LoadOptions = {}) {
    this.#registry = registry;
    this.#limits = limitsOf(options);
    attachRegistry(this, registry);
  }

  /** Every model version found, with its state (READY; UNAVAILABLE with the reason; UNLOADED under a memory budget). */
  status(): ModelStatus[] {
    return this.#registry.versions().map((v) => ({
      name: v.name,
      version: v.version,
      state: v.state,
      ...(v.reason === undefined ? {} : { reason: v.reason }),
    }));
  }

  /**
   * A ready model or pipeline (the newest ready version unless one is named), or under a memory
   * budget one that loads on its first call; throws NOT_FOUND or UNAVAILABLE. A pipeline (`ocr`)
   * takes images only: `predict()`.
   */
  model(name: string, version?: number): Model {
    const wanted = version === undefined ? undefined : String(version);
    const found = this.#registry.resolve(name, wanted);
    const readyPipeline = found.spec.config.pipeline !== undefined && found.state === 'READY';
    // Under a memory budget a model may be unloaded now: its first infer() or predict() loads it.
    const loadsOnCall = found.onDemand !== undefined && found.state !== 'UNAVAILABLE';
    if (!readyPipeline && !loadsOnCall) this.#registry.resolveReady(name, wanted);
    return new ModelHandle(this.#registry, found.name, found.version, this.#limits);
  }

  /** Stops every model's worker threads. */
  async close(): Promise<void> {
    await this.#registry.close();
  }
}

/** What a model handle enforces on each call: the pixel limit of predict() and the request limits of infer(). */
interface ModelLimits {
  maxImagePixels: number;
  request: RequestLimits;
}

function limitsOf(options: LoadOptions): ModelLimits {
  return {
    maxImagePixels: options.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS,
    request: { ...DEFAULT_REQUEST_LIMITS, ...options.limits },
  };
}

class ModelHandle implements Model {
  readonly #registry: ModelRegistry;
  readonly #limits: ModelLimits;
  readonly name: string;
  readonly version: number;

  constructor(registry: ModelRegistry, name: string, version: number, limits: ModelLimits) {
    this.#registry = registry;
    this.#limits = limits;
    this.name = name;
    this.version = version;
  }

  get metadata(): ModelMetadata {
    const version = this.#registry.resolve(this.name, String(this.version));
    // Unloaded under a memory budget (or evicted since): there is no session to describe until a call loads it.
    if (version.spec.config.pipeline === undefined && version.loaded === undefined) throw notReady(version);
    return modelMetadata(this.#registry, version);
  }

  async infer(inputs: InferInputs, options: InferCallOptions = {}): Promise<InferResult> {
    if (this.#registry.resolve(this.name, String(this.version)).spec.config.pipeline !== undefined) {
      throw invalidArgument(`model ${this.name} is a pipeline of other models: call predict() with images`);
    }
    const model = await this.#registry.acquire(this.name, String(this.version));
    const tensors = toNamedTensors(inputs).map((tensor) =>
      options.transfer === true || !ArrayBuffer.isView(tensor.data) ? tensor : { ...tensor, data: tensor.data.slice() },
    );
    const header: InferenceRequestHeader = {
      inputs: tensors.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    };
    if (options.outputs !== undefined) header.outputs = options.outputs.map((name) => ({ name }));
    if (options.id !== undefined) header.id = options.id;
    const { response } = await runInference(model, header, () => tensors, { limits: this.#limits.request });
    return toInferResult(response);
  }

  async predict<T = Prediction>(images: ImageBytes | ImageBytes[]): Promise<PredictResult<T>> {
    const list = Array.isArray(images) ? images : [images];
    const refusal = cannotTakeImages(
      this.#registry.resolve(this.name, String(this.version)),
      'call infer() with tensors',
      'config',
    );
    if (refusal !== undefined) throw refusal;
    if (list.length === 0) throw invalidArgument('predict() needs at least one image');
    const uploads = list.map((bytes, i) => {
      if (!(bytes instanceof Uint8Array)) {
        throw invalidArgument(`image ${i} is a ${typeof bytes}, expected the encoded image as a Uint8Array or Buffer`);
      }
      const name = Array.isArray(images) ? `image ${i}` : 'image';
      return {
        name,
        bytes: Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      };
    });
    const answer = await predictUploads(this.#registry, this.name, String(this.version), async () => uploads, {
      maxImagePixels: this.#limits.maxImagePixels,
    });
    return answer as PredictResult<T>;
  }
}

class StandaloneModel extends ModelHandle implements LoadedModel {
  readonly #repository: Repository;

  constructor(repository: Repository, registry: ModelRegistry, name: string, version: number, limits: ModelLimits) {
    super(registry, name, version, limits);
    this.#repository = repository;
  }

  close(): Promise<void> {
    return this.#repository.close();
  }
}

async function load(scan: ScanResult, options: LoadOptions, memoryBudget?: number): Promise<Repository> {
  const cpu = cpuBudget();
  const registry = new ModelRegistry(cpu, options.logger ?? pino({ level: 'silent' }), {
    cacheDir: options.cacheDir,
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    ...(options.workerNice === undefined ? {} : { workerNice: options.workerNice }),
    ...(memoryBudget === undefined ? {} : { memoryBudget }),
  });
  registry.add(scan);
  await registry.loadAll();
  return new Repository(registry, options);
}

/**
 * Loads every model of a Triton-style repository folder (see docs/configuration.md). Models that
 * fail to load are reported by status() and answer UNAVAILABLE; the others serve.
 */
export async function loadRepository(dir: string, options: LoadRepositoryOptions = {}): Promise<Repository> {
  const memoryBudget = memoryBudgetOf(options.modelMemoryBudget);
  const scan = await scanRepository(dir);
  const wanted = options.models;
  if (wanted !== undefined) {
    const found = new Set([...scan.specs, ...scan.errors].map((entry) => entry.name));
    const missing = wanted.filter((name) => !found.has(name));
    if (missing.length > 0) {
      throw notFound(
        `no model ${missing.join(', ')} in repository ${dir}; models there: ${[...found].sort().join(', ')}`,
      );
    }
    scan.specs = scan.specs.filter((spec) => wanted.includes(spec.name));
    scan.errors = scan.errors.filter((error) => wanted.includes(error.name));
  }
  return load(scan, options, memoryBudget);
}

/** `modelMemoryBudget` in bytes; a RangeError (or TypeError) naming the option for anything else. */
function memoryBudgetOf(value: LoadRepositoryOptions['modelMemoryBudget']): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') {
    try {
      return parseByteSize(value);
    } catch (error) {
      throw new RangeError(`modelMemoryBudget: ${(error as Error).message}`);
    }
  }
  if (typeof value !== 'number') {
    throw new TypeError(`modelMemoryBudget must be a number of bytes or a size such as '2GB', got ${typeof value}`);
  }
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`modelMemoryBudget must be a positive whole number of bytes, got ${value}`);
  }
  return value;
}

/** Loads one .onnx file, with the settings config.yaml would give it, and warms it up. */
export async function loadModel(pathOrOptions: string | LoadModelOptions): Promise<LoadedModel> {
  const options = typeof pathOrOptions === 'string' ? { path: pathOrOptions } : pathOrOptions;
  const scan = specsForFiles([options.path]);
  for (const spec of scan.specs) {
    if (options.name !== undefined) spec.name = options.name;
    if (options.config !== undefined) spec.config = validateModelConfig(options.config, 'loadModel() options.config');
  }
  if (scan.errors.length > 0) throw notFound(scan.errors[0].error);
  const repository = await load(scan, options);
  const [loaded] = registryOf(repository).versions();
  if (loaded.state !== 'READY') {
    await repository.close();
    throw unavailable(`model ${loaded.label} failed to load: ${loaded.reason ?? 'unknown reason'}`);
  }
  return new StandaloneModel(repository, registryOf(repository), loaded.name, loaded.version, limitsOf(options));
}

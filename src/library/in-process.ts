/**
 * The in-process API: models loaded into the caller's own process, on the same registry, worker
 * pool, validation and errors as the server. Inference runs on worker threads, never on the
 * caller's event loop.
 */

import { pino, type Logger } from 'pino';
import { validateModelConfig, type ModelConfig } from '../config/model-config.js';
import { notFound, unavailable } from '../protocol/errors.js';
import type { InferenceRequestHeader } from '../protocol/json-codec.js';
import { toInferResult, toNamedTensors, type InferInputs, type InferResult } from '../protocol/typed-tensors.js';
import { ModelRegistry, type ModelState } from '../repository/model-registry.js';
import { scanRepository, specsForFiles, type ScanResult } from '../repository/scan.js';
import { cpuBudget } from '../runtime/cpu.js';
import { runInference } from '../server/inference.js';
import { modelMetadata } from '../server/routes/metadata.js';

export interface LoadOptions {
  /** A pino logger for load events and failures (default: silent). */
  logger?: Logger;
}

export interface LoadRepositoryOptions extends LoadOptions {
  /** Load only these models of the repository (default: all). */
  models?: string[];
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

/** What a loaded model declares: the Open Inference Protocol's model metadata, plus what runs it. */
export type ModelMetadata = ReturnType<typeof modelMetadata>;

/** One model version, ready to infer. */
export interface Model {
  readonly name: string;
  readonly version: number;
  readonly metadata: ModelMetadata;
  /** Runs the model; throws ServeError (INVALID_ARGUMENT, UNAVAILABLE, OVERLOADED, TIMEOUT, INTERNAL). */
  infer(inputs: InferInputs, options?: InferCallOptions): Promise<InferResult>;
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

const registries = new WeakMap<Repository, ModelRegistry>();

/** The registry behind a repository, for the fastify plugin; not part of the public API. */
export function registryOf(repository: Repository): ModelRegistry {
  const registry = registries.get(repository);
  if (registry === undefined) throw new TypeError('expected a Repository from loadRepository() or loadModel()');
  return registry;
}

/** Every model of a repository folder, loaded and warmed up. */
export class Repository {
  readonly #registry: ModelRegistry;

  /** Use loadRepository(). */
  constructor(registry: ModelRegistry) {
    this.#registry = registry;
    registries.set(this, registry);
  }

  /** Every model version found, with its state (READY, or UNAVAILABLE with the reason). */
  status(): ModelStatus[] {
    return this.#registry.versions().map((v) => ({
      name: v.name,
      version: v.version,
      state: v.state,
      ...(v.reason === undefined ? {} : { reason: v.reason }),
    }));
  }

  /** A ready model (the newest ready version unless one is named); throws NOT_FOUND or UNAVAILABLE. */
  model(name: string, version?: number): Model {
    const found = this.#registry.resolveReady(name, version === undefined ? undefined : String(version));
    return new ModelHandle(this.#registry, found.name, found.version);
  }

  /** Stops every model's worker threads. */
  async close(): Promise<void> {
    await this.#registry.close();
  }
}

class ModelHandle implements Model {
  readonly #registry: ModelRegistry;
  readonly name: string;
  readonly version: number;

  constructor(registry: ModelRegistry, name: string, version: number) {
    this.#registry = registry;
    this.name = name;
    this.version = version;
  }

  get metadata(): ModelMetadata {
    return modelMetadata(this.#registry, this.#registry.resolveReady(this.name, String(this.version)));
  }

  async infer(inputs: InferInputs, options: InferCallOptions = {}): Promise<InferResult> {
    const model = this.#registry.resolveReady(this.name, String(this.version));
    const tensors = toNamedTensors(inputs).map((tensor) =>
      options.transfer === true || !ArrayBuffer.isView(tensor.data) ? tensor : { ...tensor, data: tensor.data.slice() },
    );
    const header: InferenceRequestHeader = {
      inputs: tensors.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
    };
    if (options.outputs !== undefined) header.outputs = options.outputs.map((name) => ({ name }));
    if (options.id !== undefined) header.id = options.id;
    const { response } = await runInference(model, header, () => tensors);
    return toInferResult(response);
  }
}

class StandaloneModel extends ModelHandle implements LoadedModel {
  readonly #repository: Repository;

  constructor(repository: Repository, registry: ModelRegistry, name: string, version: number) {
    super(registry, name, version);
    this.#repository = repository;
  }

  close(): Promise<void> {
    return this.#repository.close();
  }
}

async function load(scan: ScanResult, logger: Logger | undefined): Promise<Repository> {
  const registry = new ModelRegistry(cpuBudget(), logger ?? pino({ level: 'silent' }));
  registry.add(scan);
  await registry.loadAll();
  return new Repository(registry);
}

/**
 * Loads every model of a Triton-style repository folder (see docs/configuration.md). Models that
 * fail to load are reported by status() and answer UNAVAILABLE; the others serve.
 */
export async function loadRepository(dir: string, options: LoadRepositoryOptions = {}): Promise<Repository> {
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
  return load(scan, options.logger);
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
  const repository = await load(scan, options.logger);
  const [loaded] = registryOf(repository).versions();
  if (loaded.state !== 'READY') {
    await repository.close();
    throw unavailable(`model ${loaded.label} failed to load: ${loaded.reason ?? 'unknown reason'}`);
  }
  return new StandaloneModel(repository, registryOf(repository), loaded.name, loaded.version);
}

import { resolveInputBounds, type InputBound } from '../config/input-bounds.js';
import path from 'node:path';
import type { Logger } from 'pino';
import { pipelineSteps } from '../config/processing-config.js';
import { invalidArgument, notFound, unavailable } from '../protocol/errors.js';
import type { CpuBudget } from '../runtime/cpu.js';
import { resolveSessionSettings, type SessionSettings } from '../runtime/session-settings.js';
import type { SupervisorEvents } from '../runtime/instance-supervisor.js';
import { WorkerPool, type PoolReady } from '../runtime/worker-pool.js';
import { resolveBatchingPolicy } from '../scheduler/batching-policy.js';
import { ModelQueue } from '../scheduler/model-queue.js';
import { verifyOnLoad } from '../verify/load-gate.js';
import type { ModelScanError, ModelVersionSpec, ScanResult } from './scan.js';

export type ModelState = 'LOADING' | 'READY' | 'UNAVAILABLE';

/** One version of one model, from the moment it is found until it is unloaded. */
export class ModelVersion {
  readonly name: string;
  readonly version: number;
  readonly spec: ModelVersionSpec;
  readonly settings: SessionSettings;
  readonly instances: number;
  state: ModelState = 'LOADING';
  reason?: string;
  /** What the loaded instances reported: provider, signature, load and warmup figures. */
  loaded?: PoolReady;
  pool?: WorkerPool;
  /** The bounded, batching queue in front of the pool. */
  queue?: ModelQueue;
  /** config.yaml `input:` checked against the signature: shapes requests may have, by input name. */
  inputBounds: ReadonlyMap<string, InputBound> = new Map();

  constructor(spec: ModelVersionSpec, cpu: CpuBudget) {
    this.name = spec.name;
    this.version = spec.version;
    this.spec = spec;
    const resolved = resolveSessionSettings(spec.config, cpu, (p) => path.resolve(spec.configDir, p));
    this.settings = resolved.settings;
    this.instances = resolved.instances;
  }

  get label(): string {
    return `${this.name}:${this.version}`;
  }

  /** Out of service: what it already queued runs to the end, then its instances close. */
  async retire(): Promise<void> {
    await this.queue?.drain();
    this.queue?.close();
    await this.pool?.close();
  }
}

export type ReadyModelVersion = ModelVersion & { pool: WorkerPool; loaded: PoolReady; queue: ModelQueue };

/** Every model the server knows, by name and version, with its state. */
export class ModelRegistry {
  readonly #versions = new Map<string, ModelVersion[]>();
  readonly #modelErrors = new Map<string, string>();
  readonly #cpu: CpuBudget;
  readonly #log: Logger;
  #loaded = false;

  constructor(cpu: CpuBudget, log: Logger) {
    this.#cpu = cpu;
    this.#log = log;
  }

  /** Registers what a scan found; nothing loads yet. */
  add(scan: ScanResult): void {
    for (const spec of scan.specs) {
      const list = this.#versions.get(spec.name) ?? [];
      list.push(new ModelVersion(spec, this.#cpu));
      list.sort((a, b) => a.version - b.version);
      this.#versions.set(spec.name, list);
    }
    for (const error of scan.errors) this.#recordModelError(error);
  }

  /** Loads every version one after the other (loads compete for the same cores), then marks startup done. */
  async loadAll(): Promise<void> {
    const isPipeline = (version: ModelVersion) => version.spec.config.pipeline !== undefined;
    for (const version of this.versions().filter((v) => !isPipeline(v))) await this.#load(version);
    for (const version of this.versions().filter(isPipeline)) this.#settlePipeline(version);
    this.#loaded = true;
  }

  /** True once the startup load has finished, whatever its outcome. */
  get startupDone(): boolean {
    return this.#loaded;
  }

  /** Triton's strict readiness: every model found is loaded and ready. */
  get allReady(): boolean {
    return this.#loaded && this.#modelErrors.size === 0 && this.versions().every((v) => v.state === 'READY');
  }

  versions(): ModelVersion[] {
    return [...this.#versions.values()].flat();
  }

  modelNames(): string[] {
    return [...new Set([...this.#versions.keys(), ...this.#modelErrors.keys()])].sort();
  }

  modelError(name: string): string | undefined {
    return this.#modelErrors.get(name);
  }

  /** All versions of a model (oldest first); throws NOT_FOUND or, for a model that failed to scan, UNAVAILABLE. */
  versionsOf(name: string): ModelVersion[] {
    const list = this.#versions.get(name);
    if (list !== undefined) return list;
    const error = this.#modelErrors.get(name);
    if (error !== undefined) throw unavailable(`model ${name} is unavailable: ${error}`);
    const known = this.modelNames();
    throw notFound(`unknown model "${name}"; models served: ${known.length > 0 ? known.join(', ') : '(none)'}`);
  }

  /**
   * The version a request means: the one named, or else the newest ready version (the newest of all
   * when none is ready, so the caller reports why it is not).
   */
  resolve(name: string, version?: string): ModelVersion {
    const list = this.versionsOf(name);
    if (version !== undefined) {
      const found = /^[1-9][0-9]{0,8}$/.test(version) ? list.find((v) => v.version === Number(version)) : undefined;
      if (found === undefined) {
        throw notFound(`model ${name} has no version "${version}"; versions: ${list.map((v) => v.version).join(', ')}`);
      }
      return found;
    }
    return [...list].reverse().find((v) => v.state === 'READY') ?? list[list.length - 1];
  }

  /** resolve(), then insist the version is ready to infer. */
  resolveReady(name: string, version?: string): ReadyModelVersion {
    const found = this.resolve(name, version);
    if (found.spec.config.pipeline !== undefined && found.state === 'READY') {
      throw invalidArgument(`model ${name} is a pipeline of other models: send images to /v2/models/${name}/predict`);
    }
    if (
      found.state !== 'READY' ||
      found.pool === undefined ||
      found.loaded === undefined ||
      found.queue === undefined
    ) {
      const why =
        found.state === 'LOADING' ? 'is still loading' : `is unavailable: ${found.reason ?? 'unknown reason'}`;
      throw unavailable(`model ${found.name} version ${found.version} ${why}`);
    }
    return found as ReadyModelVersion;
  }

  async close(): Promise<void> {
    for (const version of this.versions()) version.queue?.close();
    await Promise.all(this.versions().map((v) => v.pool?.close()));
  }

  // Model control (src/repository/model-control.ts) swaps versions through these three.

  /** A version loaded and warmed up outside the registry, for a swap: READY, or UNAVAILABLE with its reason. */
  async prepare(spec: ModelVersionSpec): Promise<ModelVersion> {
    const version = new ModelVersion(spec, this.#cpu);
    await this.#load(version);
    return version;
  }

  /**
   * Puts `versions` in place of the model's current ones in one step (requests resolve either the old
   * set or the new one) and clears its scan error; returns the versions no longer served, still running.
   */
  install(name: string, versions: ModelVersion[]): ModelVersion[] {
    const previous = this.#versions.get(name) ?? [];
    this.#versions.set(
      name,
      [...versions].sort((a, b) => a.version - b.version),
    );
    this.#modelErrors.delete(name);
    return previous.filter((v) => !versions.includes(v));
  }

  /** Takes a model out of service; returns its versions, still running, for the caller to close. */
  remove(name: string): ModelVersion[] {
    const previous = this.#versions.get(name) ?? [];
    this.#versions.delete(name);
    this.#modelErrors.delete(name);
    return previous;
  }

  #recordModelError(error: ModelScanError): void {
    this.#modelErrors.set(error.name, error.error);
    this.#log.error({ model: error.name, reason: error.error }, `model ${error.name} cannot be served: ${error.error}`);
  }

  async #load(version: ModelVersion): Promise<void> {
    const pool = new WorkerPool(
      {
        label: version.label,
        modelPath: version.spec.modelPath,
        settings: version.settings,
        warmup: version.spec.config.warmup ?? {},
      },
      version.instances,
      this.#supervision(version),
    );
    version.state = 'LOADING';
    try {
      const loaded = await pool.start();
      await this.#verify(version, pool, loaded);
      try {
        version.inputBounds = resolveInputBounds(version.spec.config.input, loaded.signature.inputs);
      } catch (error) {
        await pool.close();
        throw error;
      }
      version.pool = pool;
      version.loaded = loaded;
      version.queue = new ModelQueue({
        label: version.label,
        runner: pool,
        instances: loaded.instances,
        policy: resolveBatchingPolicy(version.spec.config),
        signature: loaded.signature,
        batchingRequested: version.spec.config.max_batch_size !== undefined,
        log: this.#log,
      });
      version.state = 'READY';
      this.#logLoaded(version, loaded);
    } catch (error) {
      version.state = 'UNAVAILABLE';
      version.reason = (error as Error).message;
      this.#log.error(
        { model: version.name, version: version.version, path: version.spec.modelPath, reason: version.reason },
        `model ${version.label} failed to load: ${version.reason}`,
      );
    }
  }

  /** A pipeline has nothing of its own to load: it is ready when every model it runs is. */
  #settlePipeline(version: ModelVersion): void {
    const missing = pipelineSteps(version.spec.config.pipeline!).flatMap((step) => {
      try {
        this.resolveReady(step);
        return [];
      } catch (error) {
        return [`step ${(error as Error).message}`];
      }
    });
    version.state = missing.length === 0 ? 'READY' : 'UNAVAILABLE';
    if (missing.length === 0) {
      this.#log.info({ model: version.name }, `pipeline ${version.label} ready`);
      return;
    }
    version.reason = missing.join('; ');
    this.#log.error(
      { model: version.name, reason: version.reason },
      `pipeline ${version.label} cannot run: ${version.reason}`,
    );
  }

  /** Checks the version against the test data sets in its folder, if any; closes the pool when it fails. */
  async #verify(version: ModelVersion, pool: WorkerPool, loaded: PoolReady): Promise<void> {
    try {
      const report = await verifyOnLoad(version.spec, pool, loaded.signature);
      if (report === undefined) return;
      this.#log.info(
        { model: version.name, version: version.version, testDataSets: report.sets, tolerance: report.tolerance },
        `model ${version.label} matches its ${report.sets} test data sets`,
      );
    } catch (error) {
      await pool.close();
      throw error;
    }
  }

  /** Instance crashes are logged; a crash loop turns the version UNAVAILABLE with its reason. */
  #supervision(version: ModelVersion): SupervisorEvents {
    const fields = { model: version.name, version: version.version };
    return {
      instanceCrashed: ({ instance, cause }) =>
        this.#log.error(
          { ...fields, instance, reason: cause },
          `model ${version.label}: instance ${instance} crashed (${cause}); replacing it`,
        ),
      instanceReplaced: ({ instance, loadMs, warmupMs }) =>
        this.#log.info(
          { ...fields, instance, loadMs: round(loadMs), warmupMs: round(warmupMs) },
          `model ${version.label}: instance ${instance} replaced and warmed up`,
        ),
      gaveUp: (reason) => {
        version.state = 'UNAVAILABLE';
        version.reason = reason;
        this.#log.error({ ...fields, reason }, `model ${version.label} is now unavailable: ${reason}`);
      },
    };
  }

  #logLoaded(version: ModelVersion, loaded: PoolReady): void {
    for (const skipped of loaded.skippedProviders) {
      this.#log.warn(
        { model: version.name, version: version.version, provider: skipped.provider, reason: skipped.error },
        `model ${version.label}: execution provider ${skipped.provider} not used, falling back: ${skipped.error}`,
      );
    }
    if (loaded.warmup.warning !== undefined) {
      this.#log.warn(
        { model: version.name, version: version.version, shapes: loaded.warmup.shapes, reason: loaded.warmup.warning },
        `model ${version.label}: warmup on synthesised inputs failed, serving anyway (set warmup.inputs in config.yaml): ${loaded.warmup.warning}`,
      );
    }
    this.#log.info(
      {
        model: version.name,
        version: version.version,
        provider: loaded.provider,
        instances: loaded.instances,
        intraOpThreads: version.settings.intraOpThreads,
        graphOptimizationLevel: version.settings.graphOptimizationLevel,
        loadMs: round(loaded.loadMs),
        warmupMs: round(loaded.warmup.ms),
        warmupRuns: loaded.warmup.runs,
      },
      `model ${version.label} ready on ${loaded.provider} (${loaded.instances} × ${version.settings.intraOpThreads} threads): ` +
        `load ${round(loaded.loadMs)} ms, warmup ${loaded.warmup.runs} runs ${round(loaded.warmup.ms)} ms`,
    );
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

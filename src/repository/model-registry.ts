/**
 * The registry: every model version the server knows, by name and version, with its state, and the
 * lookups a request makes (resolve, resolveReady). Loading is the loader's (model-loader.ts).
 */
import type { Logger } from 'pino';
import { invalidArgument, notFound, unavailable } from '../protocol/errors.js';
import type { CpuBudget } from '../runtime/cpu.js';
import { sharedThreadPlan, type SharedThreadPlan } from '../runtime/session-settings.js';
import { SharedWorkers } from '../runtime/shared-workers.js';
import { pipelineSteps } from '../config/processing-config.js';
import { ModelLoader } from './model-loader.js';
import { MemoryBudget } from './on-demand.js';
import { notReady, unknownModel, type ModelVersion, type ReadyModelVersion } from './model-version.js';
import type { ModelScanError, ModelVersionSpec, ScanResult } from './scan.js';

export interface RegistryOptions {
  /** Threads in the server-wide worker pool (default: the usable cores). */
  workers?: number;
  /** How far below the main thread the worker threads run (default DEFAULT_WORKER_NICE; thread-priority.ts). */
  workerNice?: number;
  /** Bytes the models that load on demand may hold; set, every model (pipelines aside) loads on demand. */
  memoryBudget?: number;
  /** Where int8 variants are built and kept (default: defaultCacheDir()). */
  cacheDir?: string;
}

/** Every model the server knows, by name and version, with its state. */
export class ModelRegistry {
  readonly #versions = new Map<string, ModelVersion[]>();
  readonly #modelErrors = new Map<string, string>();
  readonly #loader: ModelLoader;
  readonly #log: Logger;
  /** The server-wide worker threads every version's sessions live on. */
  readonly workers: SharedWorkers;
  /** Set with a memory budget: versions then load on their first request (see on-demand.ts). */
  readonly memoryBudget?: MemoryBudget;
  #loaded = false;
  readonly #cpu: CpuBudget;
  /** The thread plan over the registered versions; recomputed after they change. */
  #plan?: SharedThreadPlan;
  #sharedThreadsReported = false;

  constructor(cpu: CpuBudget, log: Logger, options: RegistryOptions = {}) {
    this.#cpu = cpu;
    this.workers = new SharedWorkers(options.workers ?? cpu.usable, {
      ...(options.workerNice === undefined ? {} : { nice: options.workerNice }),
      events: {
        threadExited: ({ slot, cause, sessions }) =>
          log.error(
            { worker: slot, reason: cause, sessions },
            `worker thread ${slot} stopped (${cause}); reloading the ${sessions.length} session(s) it held`,
          ),
        priorityUnchanged: (reason) => log.warn(reason),
      },
    });
    this.#loader = new ModelLoader(cpu, log, this.workers, options.cacheDir);
    this.#log = log;
    if (options.memoryBudget !== undefined) {
      this.memoryBudget = new MemoryBudget(options.memoryBudget, this.#loader, log, () => this.versions());
    }
  }

  /** Registers what a scan found; nothing loads yet. */
  add(scan: ScanResult): void {
    this.#plan = undefined;
    const steps = this.#pipelineSteps(scan.specs);
    for (const spec of scan.specs) {
      const list = this.#versions.get(spec.name) ?? [];
      list.push(this.#loader.create(spec, this.#loadsOnDemand(spec, steps), () => this.#threadPlan().shared));
      list.sort((a, b) => a.version - b.version);
      this.#versions.set(spec.name, list);
    }
    for (const error of scan.errors) this.#recordModelError(error);
  }

  /**
   * Loads every version, as many at once as there are worker threads (a load keeps one thread busy;
   * more would only compete for the same cores), then marks startup done; versions that load on
   * demand stay UNLOADED.
   */
  async loadAll(): Promise<void> {
    // Threads started and primed before the first on-demand load keep their own cost, and onnxruntime's
    // one-off setup, out of its measured size: they are the server's base.
    if (this.memoryBudget !== undefined) await this.workers.startAll({ prime: true });
    const isPipeline = (version: ModelVersion) => version.spec.config.pipeline !== undefined;
    const pending = this.versions().filter((v) => !isPipeline(v) && v.onDemand === undefined);
    const loadNext = async (): Promise<void> => {
      for (let version = pending.shift(); version !== undefined; version = pending.shift()) {
        await this.#loader.load(version);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.workers.size, pending.length) }, loadNext));
    for (const version of this.versions().filter(isPipeline)) {
      this.#loader.settlePipeline(version, (step) => this.resolveReady(step));
    }
    // What the process holds now, threads started and pipelines loaded, is the base the budget adds to.
    this.memoryBudget?.settle();
    this.#loaded = true;
  }

  /** True once the startup load has finished, whatever its outcome. */
  get startupDone(): boolean {
    return this.#loaded;
  }

  /** Triton's strict readiness: every model found is loaded and ready (those that load on demand aside). */
  get allReady(): boolean {
    return (
      this.#loaded &&
      this.#modelErrors.size === 0 &&
      this.versions().every((v) => v.state === 'READY' || v.onDemand !== undefined)
    );
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
    if (error !== undefined) throw unavailable(`${unknownModel(name)} has no available versions: ${error}`);
    const known = this.modelNames();
    throw notFound(
      `${unknownModel(name)} is not found; models served: ${known.length > 0 ? known.join(', ') : '(none)'}`,
    );
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
        throw notFound(
          `${unknownModel(name)} version ${version} is not found; versions: ${list.map((v) => v.version).join(', ')}`,
        );
      }
      return found;
    }
    return [...list].reverse().find((v) => v.state === 'READY') ?? list[list.length - 1];
  }

  /** resolve(), then insist the version is ready to infer. */
  resolveReady(name: string, version?: string): ReadyModelVersion {
    return this.#readyOf(this.resolve(name, version));
  }

  /**
   * resolveReady() for a request that may wait: a version that loads on demand is loaded first (and
   * marked used, for the least-recently-used eviction); concurrent requests wait for the same load.
   */
  async acquire(name: string, version?: string): Promise<ReadyModelVersion> {
    const found = this.resolve(name, version);
    if (found.onDemand !== undefined) await this.memoryBudget!.ensure(found);
    return this.#readyOf(found);
  }

  #readyOf(found: ModelVersion): ReadyModelVersion {
    const name = found.name;
    if (found.spec.config.pipeline !== undefined && found.state === 'READY') {
      throw invalidArgument(`model ${name} is a pipeline of other models: send images to /v2/models/${name}/predict`);
    }
    const ready = found.ready();
    if (ready === undefined) throw notReady(found);
    return ready;
  }

  async close(): Promise<void> {
    for (const version of this.versions()) version.queue?.close();
    await Promise.all(this.versions().map((v) => v.pool?.close()));
    await this.workers.close();
  }

  // Model control (src/core/model-control.ts) swaps versions through these three.

  /**
   * A version loaded and warmed up outside the registry, for a swap: READY, or UNAVAILABLE with its
   * reason; under a memory budget, UNLOADED (it loads on its first request).
   */
  async prepare(spec: ModelVersionSpec): Promise<ModelVersion> {
    // A new model counts toward the thread plan before it is installed; a changed one replaces its own.
    const shared = () => this.#threadPlan(spec).shared;
    if (!this.#loadsOnDemand(spec, this.#pipelineSteps([]))) return this.#loader.prepare(spec, shared);
    return this.#loader.create(spec, true, shared);
  }

  /**
   * sharedThreadPlan over every version registered (plus `incoming`, a version being prepared for a
   * swap, in place of its model's current ones); said once in the log when it turns many-models.
   */
  #threadPlan(incoming?: ModelVersionSpec): SharedThreadPlan {
    if (incoming === undefined && this.#plan !== undefined) return this.#plan;
    const configs = this.versions()
      .filter((v) => incoming === undefined || v.name !== incoming.name)
      .map((v) => v.spec.config);
    if (incoming !== undefined) configs.push(incoming.config);
    const plan = sharedThreadPlan(configs, this.#cpu);
    if (incoming === undefined) this.#plan = plan;
    if (plan.shared && !this.#sharedThreadsReported) {
      this.#sharedThreadsReported = true;
      this.#log.info(
        { sessions: plan.sessions, extraThreads: plan.extraThreads, limit: plan.limit, usableCores: this.#cpu.usable },
        `${plan.sessions} sessions with per-model thread pools would keep ${plan.extraThreads} intra-op threads beside ` +
          `the ${this.workers.size} worker threads (more than 2 × ${this.#cpu.usable} usable cores): models that do not set ` +
          `session.intra_op_threads run 1 intra-op thread (and 1 instance unless they set instances)`,
      );
    }
    return plan;
  }

  /** Under a memory budget every model loads on demand, except pipelines and the models they run. */
  #loadsOnDemand(spec: ModelVersionSpec, pipelineSteps: ReadonlySet<string>): boolean {
    return this.memoryBudget !== undefined && spec.config.pipeline === undefined && !pipelineSteps.has(spec.name);
  }

  #pipelineSteps(specs: readonly ModelVersionSpec[]): Set<string> {
    const configs = [...specs.map((s) => s.config), ...this.versions().map((v) => v.spec.config)];
    return new Set(configs.flatMap((c) => (c.pipeline === undefined ? [] : pipelineSteps(c.pipeline))));
  }

  /**
   * Puts `versions` in place of the model's current ones in one step (requests resolve either the old
   * set or the new one) and clears its scan error; returns the versions no longer served, still running.
   */
  install(name: string, versions: ModelVersion[]): ModelVersion[] {
    const previous = this.#versions.get(name) ?? [];
    this.#plan = undefined;
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
    this.#plan = undefined;
    this.#versions.delete(name);
    this.#modelErrors.delete(name);
    return previous;
  }

  #recordModelError(error: ModelScanError): void {
    this.#modelErrors.set(error.name, error.error);
    this.#log.error({ model: error.name, reason: error.error }, `model ${error.name} cannot be served: ${error.error}`);
  }
}

import path from 'node:path';
import type { InputBound } from '../config/input-bounds.js';
import { unavailable, type ServeError } from '../protocol/errors.js';
import type { CachedVariant, Int8Variant } from '../quantize/int8-cache.js';
import type { CpuBudget } from '../runtime/cpu.js';
import { resolveSessionSettings, type SessionSettings } from '../runtime/session-settings.js';
import type { PoolReady, WorkerPool } from '../runtime/worker-pool.js';
import type { ModelQueue } from '../scheduler/model-queue.js';
import type { ModelVersionSpec } from './scan.js';

const NO_BOUNDS: ReadonlyMap<string, InputBound> = new Map();

/** UNLOADED: listed and available, loaded on its first request (on-demand loading under a memory budget). */
export type ModelState = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'UNLOADED';

/** What on-demand loading keeps about a version it may load and unload (see on-demand.ts). */
export interface OnDemand {
  /** Loads so far (the first request's, and each after an eviction). */
  loads: number;
  evictions: number;
  /**
   * Resident memory its last load needed, in bytes: the peak growth during the load, or what it still
   * held until the next load began if more; undefined before the first.
   */
  memoryBytes?: number;
  /** Size of the file it loads, as the last load found it: with memoryBytes, estimates versions never loaded. */
  fileBytes?: number;
  /** Wall time of the last load: sessions, warmup and verification. */
  lastLoadMs?: number;
  /** performance.now() of the last request that asked for it: the least recently used is evicted first. */
  lastUsed: number;
}

/**
 * The ONNX file a version's sessions run: the configured one, its int8 variant (`precision: int8`)
 * or its simplified copy (`simplify: true`).
 */
export interface ServedFile {
  path: string;
  precision: 'float' | 'int8';
  /** With precision int8: the cache entry, and whether this load built it. */
  int8?: Int8Variant;
  /** With simplify: the cache entry, and whether this load built it. */
  simplified?: CachedVariant;
}

/** What a loaded version runs on: the instances' report, their pool and the queue in front of it. */
export interface Running {
  /** Provider, signature, load and warmup figures, as the instances reported them. */
  loaded: PoolReady;
  pool: WorkerPool;
  /** The bounded, batching queue in front of the pool. */
  queue: ModelQueue;
  /** config.yaml `input:` checked against the signature: shapes requests may have, by input name. */
  inputBounds: ReadonlyMap<string, InputBound>;
  /** Which file runs, float or int8. */
  file: ServedFile;
}

/**
 * A version's state with what exists in it. A READY model has its instances running; a READY
 * pipeline runs nothing of its own (its steps do); an UNAVAILABLE version has its reason, and keeps
 * its instances when it lost them to a crash loop after loading, until it is unloaded.
 */
export type VersionStatus =
  | { state: 'LOADING' }
  | { state: 'UNLOADED' }
  | { state: 'READY'; running: Running }
  | { state: 'READY'; pipeline: true }
  | { state: 'UNAVAILABLE'; reason: string; running?: Running };

/** One version of one model, from the moment it is found until it is unloaded. */
export class ModelVersion {
  readonly name: string;
  readonly version: number;
  readonly spec: ModelVersionSpec;
  /** Set when the version loads on demand under a memory budget; it then starts UNLOADED. */
  readonly onDemand?: OnDemand;
  #status: VersionStatus = { state: 'LOADING' };
  readonly #cpu: CpuBudget;
  readonly #sharedThreads: () => boolean;
  #resolved?: { settings: SessionSettings; instances: number };

  /**
   * `sharedThreads` tells whether the server hosts so many sessions that defaulted intra-op threads
   * drop to 1 (sharedThreadPlan); asked once, when the settings are first needed (at the first load),
   * so that it sees every version registered by then. The settings then stay for the version's life.
   */
  constructor(spec: ModelVersionSpec, cpu: CpuBudget, onDemand = false, sharedThreads: () => boolean = () => false) {
    this.name = spec.name;
    this.version = spec.version;
    this.spec = spec;
    this.#cpu = cpu;
    this.#sharedThreads = sharedThreads;
    if (onDemand) {
      this.onDemand = { loads: 0, evictions: 0, lastUsed: 0 };
      this.#status = { state: 'UNLOADED' };
    }
  }

  /** The session settings its instances run with: config.yaml, defaults filled in. */
  get settings(): SessionSettings {
    return this.#settled().settings;
  }

  /** How many sessions (instances) it runs. */
  get instances(): number {
    return this.#settled().instances;
  }

  #settled(): { settings: SessionSettings; instances: number } {
    const spec = this.spec;
    this.#resolved ??= resolveSessionSettings(
      spec.config,
      this.#cpu,
      (p) => path.resolve(spec.configDir, p),
      this.#sharedThreads(),
    );
    return this.#resolved;
  }

  get label(): string {
    return `${this.name}:${this.version}`;
  }

  get status(): VersionStatus {
    return this.#status;
  }

  get state(): ModelState {
    return this.#status.state;
  }

  /** Why the version is UNAVAILABLE; undefined otherwise. */
  get reason(): string | undefined {
    return this.#status.state === 'UNAVAILABLE' ? this.#status.reason : undefined;
  }

  get #running(): Running | undefined {
    return 'running' in this.#status ? this.#status.running : undefined;
  }

  /** What the loaded instances reported: provider, signature, load and warmup figures. */
  get loaded(): PoolReady | undefined {
    return this.#running?.loaded;
  }

  /** The file the sessions run (float, or the int8 variant); undefined until loaded. */
  get servedFile(): ServedFile | undefined {
    return this.#running?.file;
  }

  get pool(): WorkerPool | undefined {
    return this.#running?.pool;
  }

  get queue(): ModelQueue | undefined {
    return this.#running?.queue;
  }

  /** Upper bounds on the inputs' varying dimensions (config.yaml `input:`); empty when none are set. */
  get inputBounds(): ReadonlyMap<string, InputBound> {
    return this.#running?.inputBounds ?? NO_BOUNDS;
  }

  /** This version as one that can infer now, or undefined when it cannot (not READY, or a pipeline). */
  ready(): ReadyModelVersion | undefined {
    // The status union guarantees loaded, pool and queue for a READY version with running instances.
    return this.#status.state === 'READY' && 'running' in this.#status ? (this as ReadyModelVersion) : undefined;
  }

  /** Loading (again): nothing runs yet. */
  loading(): void {
    this.#status = { state: 'LOADING' };
  }

  /** Loaded, warmed up and verified. */
  started(running: Running): void {
    this.#status = { state: 'READY', running };
  }

  /** A pipeline whose steps are all ready. */
  pipelineReady(): void {
    this.#status = { state: 'READY', pipeline: true };
  }

  /** Failed to load, or lost its instances: UNAVAILABLE with the reason, keeping what still runs for retire(). */
  failed(reason: string): void {
    const running = this.#running;
    this.#status = { state: 'UNAVAILABLE', reason, ...(running === undefined ? {} : { running }) };
  }

  /** Out of service: what it already queued runs to the end, then its instances close. */
  async retire(): Promise<void> {
    await this.queue?.drain();
    this.queue?.close();
    await this.pool?.close();
  }

  /** Evicted (on-demand loading): retired, then UNLOADED until a request loads it again. */
  async unload(): Promise<void> {
    await this.retire();
    this.#status = { state: 'UNLOADED' };
  }
}

export type ReadyModelVersion = ModelVersion & { pool: WorkerPool; loaded: PoolReady; queue: ModelQueue };

/**
 * How Triton begins every error about a model or version a request cannot use; clients and test
 * suites written against Triton match on it. onnx-serve's own detail follows.
 */
export function unknownModel(name: string): string {
  return `Request for unknown model: '${name}'`;
}

/** UNAVAILABLE for a version that is not ready, in Triton's words, then whether it is loading or why it failed. */
export function notReady(version: ModelVersion): ServeError {
  const why =
    version.state === 'LOADING'
      ? 'it is still loading'
      : version.state === 'UNLOADED'
        ? 'it is unloaded and loads on its next request'
        : `it is unavailable: ${version.reason ?? 'unknown reason'}`;
  return unavailable(`${unknownModel(version.name)} version ${version.version} is not at ready state; ${why}`);
}

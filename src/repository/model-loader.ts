/**
 * Loading a model version: its worker pool is created (a session per instance, providers tried in
 * order), warmed up and verified against the test data in its folder, then the queue is put in front
 * of it. The registry (model-registry.ts) keeps the versions and answers lookups; model control
 * (core/model-control.ts) swaps what this loads into it.
 */
import type { Logger } from 'pino';
import { resolveInputBounds } from '../config/input-bounds.js';
import { pipelineSteps } from '../config/processing-config.js';
import type { ExecutionProviderName } from '../config/model-config.js';
import { defaultCacheDir, int8Variant, simplifiedVariant } from '../quantize/int8-cache.js';
import type { CpuBudget } from '../runtime/cpu.js';
import { defaultProviderFallbackMessage, requestedProviderFallbackMessage } from '../runtime/provider-messages.js';
import type { SupervisorEvents } from '../runtime/instance-supervisor.js';
import type { SharedWorkers } from '../runtime/shared-workers.js';
import { WorkerPool, type PoolReady } from '../runtime/worker-pool.js';
import { resolveBatchingPolicy } from '../scheduler/batching-policy.js';
import { ModelQueue } from '../scheduler/model-queue.js';
import { verifyOnLoad } from './load-gate.js';
import { ModelVersion, type ServedFile } from './model-version.js';
import type { ModelVersionSpec } from './scan.js';

export class ModelLoader {
  readonly #cpu: CpuBudget;
  readonly #log: Logger;
  /** Where int8 variants (`precision: int8`) are built and kept. */
  readonly #cacheDir: string;
  readonly #workers: SharedWorkers;
  /** Providers of the default list already reported missing: said once, not once per model. */
  readonly #defaultFallbackReported = new Set<ExecutionProviderName>();

  constructor(cpu: CpuBudget, log: Logger, workers: SharedWorkers, cacheDir: string = defaultCacheDir()) {
    this.#cpu = cpu;
    this.#log = log;
    this.#workers = workers;
    this.#cacheDir = cacheDir;
  }

  /**
   * A version found by a scan, not loaded yet (UNLOADED when it loads on demand); `sharedThreads`
   * says, at its first load, whether the server hosts too many sessions for per-model thread pools.
   */
  create(spec: ModelVersionSpec, onDemand = false, sharedThreads?: () => boolean): ModelVersion {
    return new ModelVersion(spec, this.#cpu, onDemand, sharedThreads);
  }

  /** A version created and loaded outside the registry, for a swap: READY, or UNAVAILABLE with its reason. */
  async prepare(spec: ModelVersionSpec, sharedThreads?: () => boolean): Promise<ModelVersion> {
    const version = this.create(spec, false, sharedThreads);
    await this.load(version);
    return version;
  }

  /** Creates the version's instances (sessions on the shared worker threads), warms them up and verifies them: READY, or UNAVAILABLE with the reason. */
  async load(version: ModelVersion): Promise<void> {
    version.loading();
    try {
      const file = await this.#servedFile(version);
      const pool = new WorkerPool(
        {
          label: version.label,
          modelPath: file.path,
          settings: version.settings,
          warmup: version.spec.config.warmup ?? {},
        },
        version.instances,
        this.#supervision(version),
        undefined,
        this.#workers,
      );
      const loaded = await pool.start();
      await this.#verify(version, pool, loaded);
      let inputBounds;
      try {
        inputBounds = resolveInputBounds(version.spec.config.input, loaded.signature.inputs);
      } catch (error) {
        await pool.close();
        throw error;
      }
      const queue = new ModelQueue({
        label: version.label,
        runner: pool,
        instances: loaded.instances,
        policy: resolveBatchingPolicy(version.spec.config),
        signature: loaded.signature,
        batchingRequested: version.spec.config.max_batch_size !== undefined,
        log: this.#log,
      });
      version.started({ loaded, pool, queue, inputBounds, file });
      this.#logLoaded(version, loaded, file);
    } catch (error) {
      version.failed((error as Error).message);
      this.#log.error(
        { model: version.name, version: version.version, path: version.spec.modelPath, reason: version.reason },
        `model ${version.label} failed to load: ${version.reason}`,
      );
    }
  }

  /**
   * The file the version serves: its own, or from the cache (built first if needed) the int8
   * variant (`precision: int8`) or the simplified copy (`simplify: true`).
   */
  async #servedFile(version: ModelVersion): Promise<ServedFile> {
    const { spec } = version;
    const fields = { model: version.name, version: version.version, float: spec.modelPath, cacheDir: this.#cacheDir };
    if (spec.config.precision !== 'int8') {
      if (spec.config.simplify !== true) return { path: spec.modelPath, precision: 'float' };
      const variant = await simplifiedVariant({
        floatPath: spec.modelPath,
        cacheDir: this.#cacheDir,
        building: (reason) =>
          this.#log.info({ ...fields, reason }, `model ${version.label}: simplifying its graph (${reason})`),
      });
      this.#log.info(
        { ...fields, simplified: variant.path, reason: variant.buildReason, buildSeconds: variant.buildSeconds },
        variant.source === 'built'
          ? `model ${version.label}: graph simplified in ${variant.buildSeconds!.toFixed(1)} s: ${variant.path}`
          : `model ${version.label}: simplified graph from the cache: ${variant.path}`,
      );
      return { path: variant.path, precision: 'float', simplified: variant };
    }
    const variant = await int8Variant({
      floatPath: spec.modelPath,
      config: spec.config,
      configDir: spec.configDir,
      cacheDir: this.#cacheDir,
      // Said before the build, which takes seconds to minutes: a quiet start would look hung.
      building: (reason) =>
        this.#log.info({ ...fields, reason }, `model ${version.label}: building its int8 variant (${reason})`),
    });
    if (variant.source === 'built') {
      this.#log.info(
        { ...fields, int8: variant.path, reason: variant.buildReason, buildSeconds: round(variant.buildSeconds!) },
        `model ${version.label}: int8 variant built in ${variant.buildSeconds!.toFixed(1)} s (${variant.buildReason}) from ${variant.calibration}: ${variant.path}`,
      );
    } else {
      this.#log.info(
        { ...fields, int8: variant.path },
        `model ${version.label}: int8 variant from the cache: ${variant.path}`,
      );
    }
    return { path: variant.path, precision: 'int8', int8: variant };
  }

  /**
   * A pipeline has nothing of its own to load: it is ready when every model it runs is.
   * `resolveReady` throws the reason a step cannot run.
   */
  settlePipeline(version: ModelVersion, resolveReady: (step: string) => unknown): void {
    const missing = pipelineSteps(version.spec.config.pipeline!).flatMap((step) => {
      try {
        resolveReady(step);
        return [];
      } catch (error) {
        return [`step ${(error as Error).message}`];
      }
    });
    if (missing.length === 0) {
      version.pipelineReady();
      this.#log.info({ model: version.name }, `pipeline ${version.label} ready`);
      return;
    }
    version.failed(missing.join('; '));
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
        version.failed(reason);
        this.#log.error({ ...fields, reason }, `model ${version.label} is now unavailable: ${reason}`);
      },
    };
  }

  #logLoaded(version: ModelVersion, loaded: PoolReady, file: ServedFile): void {
    // Providers named in config.yaml that could not be had are worth a warning per model; the
    // default list's CUDA attempt on a host without CUDA is one info line per server start.
    const requested = version.spec.config.session?.execution_providers !== undefined;
    for (const skipped of loaded.skippedProviders) {
      const fields = {
        model: version.name,
        version: version.version,
        provider: skipped.provider,
        reason: skipped.error,
      };
      if (requested) {
        this.#log.warn(fields, requestedProviderFallbackMessage(version.label, skipped, loaded.provider));
      } else if (!this.#defaultFallbackReported.has(skipped.provider)) {
        this.#defaultFallbackReported.add(skipped.provider);
        this.#log.info(
          { provider: skipped.provider, reason: skipped.error, using: loaded.provider },
          defaultProviderFallbackMessage(skipped, loaded.provider),
        );
      }
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
        precision: file.precision,
        file: file.path,
        instances: loaded.instances,
        intraOpThreads: version.settings.intraOpThreads,
        intraOpThreadsSource: version.settings.intraOpThreadsSource,
        graphOptimizationLevel: version.settings.graphOptimizationLevel,
        loadMs: round(loaded.loadMs),
        warmupMs: round(loaded.warmup.ms),
        warmupRuns: loaded.warmup.runs,
      },
      `model ${version.label} (${file.precision}) ready on ${loaded.provider} (${loaded.instances} × ${version.settings.intraOpThreads} threads): ` +
        `load ${round(loaded.loadMs)} ms, warmup ${loaded.warmup.runs} runs ${round(loaded.warmup.ms)} ms`,
    );
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

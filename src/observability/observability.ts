import type { Logger } from 'pino';
import type { ModelRegistry } from '../repository/model-registry.js';
import type { ModelVersion } from '../repository/model-version.js';
import {
  subscribeInference,
  type InferenceFinished,
  type InferenceStarted,
  type ObservedModel,
} from './inference-events.js';
import { InferenceLog, type InferenceLogOptions } from './inference-log.js';
import { ServerMetrics } from './metrics.js';
import { DEFAULT_LATENCY_ALERT_MS, DEFAULT_WINDOW_SIZE, RollingStats } from './rolling-stats.js';
import { VersionStatistics, type ModelStatistics } from './statistics.js';

export interface ObservabilityOptions {
  /** Requests kept per model version for the rolling statistics (default 1000). */
  windowSize?: number;
  log?: InferenceLogOptions;
}

/**
 * Everything one server observes about its inferences: Prometheus metrics, Triton-style statistics
 * with rolling windows, and the slow/failed inference log. It subscribes to the inference events
 * once and keeps only those of its own registry's models (several servers may share a process).
 */
export class Observability {
  readonly metrics: ServerMetrics;
  readonly #registry: ModelRegistry;
  readonly #log: InferenceLog;
  readonly #windowSize: number;
  readonly #statistics = new WeakMap<ObservedModel, VersionStatistics>();
  readonly #unsubscribe: () => void;

  constructor(registry: ModelRegistry, log: Logger, options: ObservabilityOptions = {}) {
    this.#registry = registry;
    this.#windowSize = options.windowSize ?? DEFAULT_WINDOW_SIZE;
    this.#log = new InferenceLog(log, options.log);
    this.metrics = new ServerMetrics(() =>
      registry.versions().map((v) => ({
        name: v.name,
        version: v.version,
        ready: v.state === 'READY',
        loadMs: v.loaded?.loadMs,
        warmupMs: v.loaded?.warmup.ms,
        ...(v.onDemand === undefined ? {} : { onDemand: { ...v.onDemand } }),
      })),
    );
    this.#unsubscribe = subscribeInference({
      started: (event) => this.#started(event),
      finished: (event) => this.#finished(event),
    });
  }

  /** Statistics of the given versions (default: every version the registry knows). */
  statistics(versions: ModelVersion[] = this.#registry.versions()): ModelStatistics[] {
    return versions.map((v) => this.#statisticsOf(v).toJSON(v.name, v.version, v.state));
  }

  close(): void {
    this.#unsubscribe();
    this.#log.close();
  }

  #started(event: InferenceStarted): void {
    const stats = this.#ours(event.model);
    if (stats === undefined) return;
    stats.started();
    this.metrics.started(event);
  }

  #finished(event: InferenceFinished): void {
    const stats = this.#ours(event.model);
    if (stats === undefined) return;
    stats.finished(event);
    this.metrics.finished(event);
    this.#log.finished(event, stats.rolling.latencyAlertMs);
  }

  /** The statistics of a version of this server's registry; undefined for another server's model. */
  #ours(model: ObservedModel): VersionStatistics | undefined {
    const known = this.#statistics.get(model);
    if (known !== undefined) return known;
    const version = this.#registry.versions().find((v) => v === model);
    return version === undefined ? undefined : this.#statisticsOf(version);
  }

  #statisticsOf(version: ModelVersion): VersionStatistics {
    let stats = this.#statistics.get(version);
    if (stats === undefined) {
      const rolling = new RollingStats({
        windowSize: this.#windowSize,
        latencyAlertMs: version.spec.config.latency_alert_ms ?? DEFAULT_LATENCY_ALERT_MS,
      });
      stats = new VersionStatistics(rolling);
      this.#statistics.set(version, stats);
    }
    return stats;
  }
}

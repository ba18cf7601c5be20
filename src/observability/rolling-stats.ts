/**
 * Rolling latency statistics of one model version: the last N requests in a ring buffer (O(1) per
 * request, no allocation), exact nearest-rank percentiles over them, throughput over the last 10 s,
 * and a healthy/degraded status against the model's latency threshold.
 */
import { nearestRank } from './percentile.js';

export const DEFAULT_WINDOW_SIZE = 1000;
export const DEFAULT_LATENCY_ALERT_MS = 150;
/** Throughput and error rates are averaged over this many whole seconds. */
export const THROUGHPUT_SECONDS = 10;

export type HealthStatus = 'healthy' | 'degraded';

export interface RollingSample {
  ok: boolean;
  totalMs: number;
  queueMs?: number;
  computeMs?: number;
  batchSize: number;
}

export interface RollingSnapshot {
  /** Requests in the window (successful and failed). */
  count: number;
  errors: number;
  /** Latency of the successful requests in the window, in ms; null while there are none. */
  mean_ms: number | null;
  min_ms: number | null;
  max_ms: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  queue_p50_ms: number | null;
  compute_p50_ms: number | null;
  batch_size_mean: number | null;
  /** Successful requests per second over the last THROUGHPUT_SECONDS whole seconds. */
  throughput_per_s: number;
  errors_per_s: number;
  /** `degraded` while the window's p95 is above the threshold. */
  status: HealthStatus;
  latency_alert_ms: number;
  window_size: number;
}

export interface RollingStatsOptions {
  windowSize?: number;
  latencyAlertMs?: number;
  /** Milliseconds since some origin; injectable so that tests control time. */
  now?: () => number;
}

export class RollingStats {
  readonly windowSize: number;
  readonly latencyAlertMs: number;
  readonly #now: () => number;
  readonly #total: Float64Array;
  readonly #queue: Float64Array;
  readonly #compute: Float64Array;
  readonly #batch: Float64Array;
  readonly #ok: Uint8Array;
  #next = 0;
  #filled = 0;
  // Per-second completion counts over the last THROUGHPUT_SECONDS + 1 seconds, as a ring keyed by second.
  readonly #secondOf = new Float64Array(THROUGHPUT_SECONDS + 1).fill(-1);
  readonly #okPerSecond = new Uint32Array(THROUGHPUT_SECONDS + 1);
  readonly #errorsPerSecond = new Uint32Array(THROUGHPUT_SECONDS + 1);

  constructor(options: RollingStatsOptions = {}) {
    this.windowSize = options.windowSize ?? DEFAULT_WINDOW_SIZE;
    this.latencyAlertMs = options.latencyAlertMs ?? DEFAULT_LATENCY_ALERT_MS;
    if (!Number.isInteger(this.windowSize) || this.windowSize < 1) {
      throw new RangeError(`windowSize must be a positive integer, got ${this.windowSize}`);
    }
    this.#now = options.now ?? (() => performance.now());
    this.#total = new Float64Array(this.windowSize);
    this.#queue = new Float64Array(this.windowSize);
    this.#compute = new Float64Array(this.windowSize);
    this.#batch = new Float64Array(this.windowSize);
    this.#ok = new Uint8Array(this.windowSize);
  }

  record(sample: RollingSample): void {
    const i = this.#next;
    this.#total[i] = sample.totalMs;
    this.#queue[i] = sample.queueMs ?? Number.NaN;
    this.#compute[i] = sample.computeMs ?? Number.NaN;
    this.#batch[i] = sample.batchSize;
    this.#ok[i] = sample.ok ? 1 : 0;
    this.#next = (i + 1) % this.windowSize;
    if (this.#filled < this.windowSize) this.#filled++;

    const second = Math.floor(this.#now() / 1000);
    const slot = second % this.#secondOf.length;
    if (this.#secondOf[slot] !== second) {
      this.#secondOf[slot] = second;
      this.#okPerSecond[slot] = 0;
      this.#errorsPerSecond[slot] = 0;
    }
    if (sample.ok) this.#okPerSecond[slot]++;
    else this.#errorsPerSecond[slot]++;
  }

  snapshot(): RollingSnapshot {
    const latencies: number[] = [];
    const queues: number[] = [];
    const computes: number[] = [];
    let batchSum = 0;
    for (let i = 0; i < this.#filled; i++) {
      if (this.#ok[i] !== 1) continue;
      latencies.push(this.#total[i]);
      if (!Number.isNaN(this.#queue[i])) queues.push(this.#queue[i]);
      if (!Number.isNaN(this.#compute[i])) computes.push(this.#compute[i]);
      batchSum += this.#batch[i];
    }
    const sorted = Float64Array.from(latencies).sort();
    const n = sorted.length;
    const p95 = nearestRank(sorted, 95);
    const { ok, errors } = this.#lastSeconds();
    return {
      count: this.#filled,
      errors: this.#filled - n,
      mean_ms: n === 0 ? null : latencies.reduce((a, b) => a + b, 0) / n,
      min_ms: n === 0 ? null : sorted[0],
      max_ms: n === 0 ? null : sorted[n - 1],
      p50_ms: nearestRank(sorted, 50),
      p95_ms: p95,
      p99_ms: nearestRank(sorted, 99),
      queue_p50_ms: nearestRank(Float64Array.from(queues).sort(), 50),
      compute_p50_ms: nearestRank(Float64Array.from(computes).sort(), 50),
      batch_size_mean: n === 0 ? null : batchSum / n,
      throughput_per_s: ok / THROUGHPUT_SECONDS,
      errors_per_s: errors / THROUGHPUT_SECONDS,
      status: p95 !== null && p95 > this.latencyAlertMs ? 'degraded' : 'healthy',
      latency_alert_ms: this.latencyAlertMs,
      window_size: this.windowSize,
    };
  }

  /** Completions in the last THROUGHPUT_SECONDS whole seconds (the current, partial second is left out). */
  #lastSeconds(): { ok: number; errors: number } {
    const current = Math.floor(this.#now() / 1000);
    let ok = 0;
    let errors = 0;
    for (let slot = 0; slot < this.#secondOf.length; slot++) {
      const second = this.#secondOf[slot];
      if (second >= current - THROUGHPUT_SECONDS && second < current) {
        ok += this.#okPerSecond[slot];
        errors += this.#errorsPerSecond[slot];
      }
    }
    return { ok, errors };
  }
}

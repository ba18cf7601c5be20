import type { InferenceFinished } from './inference-events.js';
import { RollingStats, type RollingSnapshot } from './rolling-stats.js';

/** Triton's `StatisticDuration`: how many, and their total time in nanoseconds. */
export interface StatisticDuration {
  count: number;
  ns: number;
}

/** One entry of `model_stats`: Triton's statistics extension, plus the rolling window and state. */
export interface ModelStatistics {
  name: string;
  version: string;
  state: string;
  /** Milliseconds since the epoch of the last finished inference; 0 for none. */
  last_inference: number;
  inference_count: number;
  execution_count: number;
  pending_request_count: number;
  inference_stats: {
    success: StatisticDuration;
    fail: StatisticDuration;
    queue: StatisticDuration;
    /** Moving inputs to the worker is measured inside `queue`: the count is the requests', 0 ns. */
    compute_input: StatisticDuration;
    compute_infer: StatisticDuration;
    /** Outputs come back by transfer, inside `queue` too: the count is the requests', 0 ns. */
    compute_output: StatisticDuration;
    /** onnx-serve has no response cache: always zero. */
    cache_hit: StatisticDuration;
    cache_miss: StatisticDuration;
  };
  /** Executions per batch size (session.run calls; a request's share of its batch counts), ascending. */
  batch_stats: BatchStatistics[];
  /** Triton's per-device memory figures: onnxruntime-node does not report them, so always empty. */
  memory_usage: never[];
  failures_by_reason: Record<string, number>;
  rolling: RollingSnapshot;
}

/** Triton's `InferBatchStatistics`: executions of one batch size. */
export interface BatchStatistics {
  batch_size: number;
  compute_input: StatisticDuration;
  compute_infer: StatisticDuration;
  compute_output: StatisticDuration;
}

const msToNs = (ms: number) => Math.round(ms * 1e6);

/** Cumulative counters since start (Triton's) and the rolling window, for one model version. */
export class VersionStatistics {
  readonly rolling: RollingStats;
  #lastInference = 0;
  #inferenceCount = 0;
  // Fractional per request (items / batch size), so the requests of one batch add up to one execution.
  #executionCount = 0;
  #pending = 0;
  readonly #success: StatisticDuration = { count: 0, ns: 0 };
  readonly #fail: StatisticDuration = { count: 0, ns: 0 };
  readonly #queue: StatisticDuration = { count: 0, ns: 0 };
  readonly #compute: StatisticDuration = { count: 0, ns: 0 };
  readonly #failures: Record<string, number> = {};
  /** Per batch size: executions (fractional, as #executionCount) and their session.run time. */
  readonly #batches = new Map<number, { executions: number; ms: number }>();

  constructor(rolling: RollingStats) {
    this.rolling = rolling;
  }

  started(): void {
    this.#pending++;
  }

  finished(event: InferenceFinished): void {
    if (event.started) this.#pending--;
    this.#lastInference = Date.now();
    this.rolling.record(event);
    if (!event.ok) {
      add(this.#fail, event.totalMs);
      const reason = event.reason ?? 'internal';
      this.#failures[reason] = (this.#failures[reason] ?? 0) + 1;
      return;
    }
    add(this.#success, event.totalMs);
    if (event.queueMs !== undefined) add(this.#queue, event.queueMs);
    if (event.computeMs !== undefined) add(this.#compute, event.computeMs);
    this.#inferenceCount += event.items;
    const share = event.items / event.batchSize;
    this.#executionCount += share;
    const batch = this.#batches.get(event.batchSize) ?? { executions: 0, ms: 0 };
    batch.executions += share;
    // Every request of a batch reports the batch's session.run time: each adds its share of it.
    batch.ms += (event.computeMs ?? 0) * share;
    this.#batches.set(event.batchSize, batch);
  }

  get pending(): number {
    return this.#pending;
  }

  toJSON(name: string, version: number, state: string): ModelStatistics {
    return {
      name,
      version: String(version),
      state,
      last_inference: this.#lastInference,
      inference_count: this.#inferenceCount,
      execution_count: Math.round(this.#executionCount),
      pending_request_count: this.#pending,
      inference_stats: {
        success: { ...this.#success },
        fail: { ...this.#fail },
        queue: { ...this.#queue },
        compute_input: { count: this.#success.count, ns: 0 },
        compute_infer: { ...this.#compute },
        compute_output: { count: this.#success.count, ns: 0 },
        cache_hit: { count: 0, ns: 0 },
        cache_miss: { count: 0, ns: 0 },
      },
      batch_stats: [...this.#batches.entries()]
        .sort(([a], [b]) => a - b)
        .map(([size, batch]) => {
          const count = Math.round(batch.executions);
          return {
            batch_size: size,
            compute_input: { count, ns: 0 },
            compute_infer: { count, ns: msToNs(batch.ms) },
            compute_output: { count, ns: 0 },
          };
        }),
      memory_usage: [],
      failures_by_reason: { ...this.#failures },
      rolling: this.rolling.snapshot(),
    };
  }
}

function add(duration: StatisticDuration, ms: number): void {
  duration.count++;
  duration.ns += msToNs(ms);
}

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InferenceFinished, InferenceStarted, ObservedModel } from './inference-events.js';

/** What /metrics reads about a model version at scrape time. */
export interface ScrapedModel {
  name: string;
  version: number;
  ready: boolean;
  loadMs?: number;
  warmupMs?: number;
  /** Versions that load on demand (--model-memory-budget): loads, evictions, measured memory, last load time. */
  onDemand?: { loads: number; evictions: number; memoryBytes?: number; lastLoadMs?: number };
}

interface ModelMetrics {
  pending: Gauge.Internal<'model' | 'version'>;
  success: Counter.Internal;
  items: Counter.Internal;
  executions: Counter.Internal;
  requestDuration: Histogram.Internal<'model' | 'version'>;
  queueDuration: Histogram.Internal<'model' | 'version'>;
  computeDuration: Histogram.Internal<'model' | 'version'>;
  batchSize: Histogram.Internal<'model' | 'version'>;
}

export const METRIC_PREFIX = 'onnx_serve_';

// Request latencies from sub-millisecond classifiers to multi-second detectors on a CPU.
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128];

/**
 * The Prometheus metrics of one server, on a registry of its own (not prom-client's global one), so
 * that several servers in one process each report their own. Names follow Triton's (docs/metrics.md).
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #success: Counter<'model' | 'version'>;
  readonly #failure: Counter<'model' | 'version' | 'reason'>;
  readonly #items: Counter<'model' | 'version'>;
  readonly #executions: Counter<'model' | 'version'>;
  readonly #pending: Gauge<'model' | 'version'>;
  readonly #requestDuration: Histogram<'model' | 'version'>;
  readonly #queueDuration: Histogram<'model' | 'version'>;
  readonly #computeDuration: Histogram<'model' | 'version'>;
  readonly #batchSize: Histogram<'model' | 'version'>;
  // The labelled children of one model version, made once: spares prom-client's label validation on every request.
  readonly #children = new WeakMap<ObservedModel, ModelMetrics>();

  constructor(models: () => ScrapedModel[]) {
    const registers = [this.registry];
    const labelNames = ['model', 'version'] as const;
    const counter = <L extends string>(name: string, help: string, names: readonly L[]) =>
      new Counter<L>({ name: `${METRIC_PREFIX}${name}`, help, labelNames: names, registers });
    this.#success = counter('inference_request_success_total', 'Inference requests that succeeded', labelNames);
    this.#failure = counter(
      'inference_request_failure_total',
      'Inference requests that failed, by reason: rejected (overloaded, unavailable), timeout, invalid (bad request), internal',
      ['model', 'version', 'reason'],
    );
    this.#items = counter(
      'inference_count_total',
      'Inferences performed: items of the successful requests (a batch of 4 counts 4)',
      labelNames,
    );
    this.#executions = counter(
      'inference_exec_count_total',
      'Model executions (batches run); each request adds its share of the batch it ran in',
      labelNames,
    );
    this.#pending = new Gauge({
      name: `${METRIC_PREFIX}inference_pending_request_count`,
      help: 'Requests decoded and waiting for or running on the model',
      labelNames,
      registers,
    });
    const histogram = (name: string, help: string, buckets = DURATION_BUCKETS) =>
      new Histogram({ name: `${METRIC_PREFIX}${name}`, help, labelNames, buckets, registers });
    this.#requestDuration = histogram(
      'inference_request_duration_seconds',
      'Successful inference requests, from arrival to answer',
    );
    this.#queueDuration = histogram(
      'inference_queue_duration_seconds',
      'Time successful requests waited before their model ran (queue, batching, transfer to the worker)',
    );
    this.#computeDuration = histogram(
      'inference_compute_duration_seconds',
      'Time inside onnxruntime session.run for successful requests',
    );
    this.#batchSize = histogram(
      'inference_batch_size',
      'Items in the execution that served each successful request',
      BATCH_SIZE_BUCKETS,
    );

    new Gauge({
      name: `${METRIC_PREFIX}model_ready`,
      help: '1 when the model version is loaded, warmed up and serving, 0 otherwise',
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const m of models()) this.set({ model: m.name, version: String(m.version) }, m.ready ? 1 : 0);
      },
    });
    // Figures each version keeps itself (load times, on-demand loading's tallies), read at scrape time.
    const scraped = (
      kind: 'counter' | 'gauge',
      name: string,
      help: string,
      pick: (m: ScrapedModel) => number | undefined,
    ) => {
      const Metric = kind === 'counter' ? Counter : Gauge;
      new Metric({
        name: `${METRIC_PREFIX}${name}`,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const m of models()) {
            const value = pick(m);
            if (value === undefined) continue;
            const at = { model: m.name, version: String(m.version) };
            if (this instanceof Counter) this.inc(at, value);
            else (this as Gauge<'model' | 'version'>).set(at, value);
          }
        },
      });
    };
    const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);
    scraped('gauge', 'model_load_duration_seconds', 'Time to create the model’s sessions', (m) => seconds(m.loadMs));
    scraped('gauge', 'model_warmup_duration_seconds', 'Time the warmup runs took before the model was ready', (m) =>
      seconds(m.warmupMs),
    );
    scraped(
      'counter',
      'model_loads_total',
      'Loads of a model that loads on demand (its first request, and each after an eviction)',
      (m) => m.onDemand?.loads,
    );
    scraped(
      'counter',
      'model_evictions_total',
      'Unloads of a model to make room under --model-memory-budget',
      (m) => m.onDemand?.evictions,
    );
    scraped(
      'gauge',
      'model_memory_bytes',
      'Resident memory the model added when it loaded on demand (the largest measured)',
      (m) => m.onDemand?.memoryBytes,
    );
    scraped(
      'gauge',
      'model_on_demand_load_duration_seconds',
      'Wall time of the last on-demand load: sessions, warmup and verification',
      (m) => seconds(m.onDemand?.lastLoadMs),
    );

    // RSS, heap, GC and event-loop lag (nodejs_eventloop_lag_*), on this registry only.
    // Unprefixed, under their standard names, so the usual Node.js dashboards work unchanged.
    collectDefaultMetrics({ register: this.registry });
  }

  started(event: InferenceStarted): void {
    this.#of(event.model).pending.inc();
  }

  finished(event: InferenceFinished): void {
    const metrics = this.#of(event.model);
    if (event.started) metrics.pending.dec();
    if (!event.ok) {
      this.#failure.inc({ ...labels(event.model), reason: event.reason ?? 'internal' });
      return;
    }
    metrics.success.inc();
    metrics.items.inc(event.items);
    metrics.executions.inc(event.items / event.batchSize);
    metrics.requestDuration.observe(event.totalMs / 1000);
    if (event.queueMs !== undefined) metrics.queueDuration.observe(event.queueMs / 1000);
    if (event.computeMs !== undefined) metrics.computeDuration.observe(event.computeMs / 1000);
    metrics.batchSize.observe(event.batchSize);
  }

  #of(model: ObservedModel): ModelMetrics {
    let children = this.#children.get(model);
    if (children === undefined) {
      children = this.#bind(model);
      this.#children.set(model, children);
    }
    return children;
  }

  #bind(model: ObservedModel): ModelMetrics {
    const l = labels(model);
    return {
      pending: this.#pending.labels(l),
      success: this.#success.labels(l),
      items: this.#items.labels(l),
      executions: this.#executions.labels(l),
      requestDuration: this.#requestDuration.labels(l),
      queueDuration: this.#queueDuration.labels(l),
      computeDuration: this.#computeDuration.labels(l),
      batchSize: this.#batchSize.labels(l),
    };
  }

  /** The exposition text, and its content type. */
  async scrape(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}

function labels(model: ObservedModel): { model: string; version: string } {
  return { model: model.name, version: String(model.version) };
}

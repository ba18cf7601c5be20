import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { InferenceFinished, InferenceStarted, ObservedModel } from './inference-events.js';
import { TalliedHistogram, type HistogramSeries } from './tallied-histogram.js';

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

type ModelLabels = { model: string; version: string };

/**
 * One model version's figures as plain numbers, updated in place per inference and read by the
 * metrics when /metrics is scraped: no prom-client call on the hot path (see tallied-histogram.ts).
 * Model objects with the same name and version share one (their series are one).
 */
interface ModelTally {
  labels: ModelLabels;
  /** Requests pending now; the series exists once a request was counted pending. */
  pending: number;
  pendingCounted: boolean;
  /** Successful requests; the success, items and executions series exist once there is one. */
  success: number;
  items: number;
  executions: number;
  requestDuration: HistogramSeries;
  queueDuration: HistogramSeries;
  computeDuration: HistogramSeries;
  batchSize: HistogramSeries;
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
  readonly #failure: Counter<'model' | 'version' | 'reason'>;
  readonly #requestDuration: TalliedHistogram;
  readonly #queueDuration: TalliedHistogram;
  readonly #computeDuration: TalliedHistogram;
  readonly #batchSize: TalliedHistogram;
  // Each model object's tally, found without building its labels; and the tallies by series, in the
  // order they were made (the order a scrape lists them in).
  readonly #tallyOf = new WeakMap<ObservedModel, ModelTally>();
  readonly #tallies = new Map<string, ModelTally>();

  constructor(models: () => ScrapedModel[]) {
    const registers = [this.registry];
    const labelNames = ['model', 'version'] as const;
    const tallies = this.#tallies;
    // A counter or gauge whose series are read when /metrics is scraped: each [labels, value] `series` gives.
    const readAtScrape = (
      kind: 'counter' | 'gauge',
      name: string,
      help: string,
      series: () => Iterable<readonly [ModelLabels, number]>,
    ) => {
      const Metric = kind === 'counter' ? Counter : Gauge;
      new Metric({
        name: `${METRIC_PREFIX}${name}`,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const [at, value] of series()) {
            if (this instanceof Counter) this.inc(at, value);
            else (this as Gauge<'model' | 'version'>).set(at, value);
          }
        },
      });
    };
    // A tallied count, with a series for each model version that has had a successful request.
    const successful = (value: (t: ModelTally) => number) =>
      function* () {
        for (const tally of tallies.values()) if (tally.success > 0) yield [tally.labels, value(tally)] as const;
      };
    readAtScrape(
      'counter',
      'inference_request_success_total',
      'Inference requests that succeeded',
      successful((t) => t.success),
    );
    this.#failure = new Counter({
      name: `${METRIC_PREFIX}inference_request_failure_total`,
      help: 'Inference requests that failed, by reason: rejected (overloaded, unavailable), timeout, invalid (bad request), internal',
      labelNames: ['model', 'version', 'reason'],
      registers,
    });
    readAtScrape(
      'counter',
      'inference_count_total',
      'Inferences performed: items of the successful requests (a batch of 4 counts 4)',
      successful((t) => t.items),
    );
    readAtScrape(
      'counter',
      'inference_exec_count_total',
      'Model executions (batches run); each request adds its share of the batch it ran in',
      successful((t) => t.executions),
    );
    readAtScrape(
      'gauge',
      'inference_pending_request_count',
      'Requests decoded and waiting for or running on the model',
      function* () {
        for (const tally of tallies.values()) if (tally.pendingCounted) yield [tally.labels, tally.pending] as const;
      },
    );
    const histogram = (name: string, help: string, buckets = DURATION_BUCKETS) =>
      new TalliedHistogram({ name: `${METRIC_PREFIX}${name}`, help, buckets, registers });
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

    readAtScrape('gauge', 'model_ready', '1 when the model version is loaded, warmed up and serving, 0 otherwise', () =>
      models().map((m) => [labels(m), m.ready ? 1 : 0] as const),
    );
    // Figures each version keeps itself (load times, on-demand loading's tallies), read at scrape time.
    const scraped = (
      kind: 'counter' | 'gauge',
      name: string,
      help: string,
      pick: (m: ScrapedModel) => number | undefined,
    ) =>
      readAtScrape(kind, name, help, function* () {
        for (const m of models()) {
          const value = pick(m);
          if (value !== undefined) yield [labels(m), value] as const;
        }
      });
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
    const tally = this.#of(event.model);
    tally.pending++;
    tally.pendingCounted = true;
  }

  finished(event: InferenceFinished): void {
    const tally = this.#of(event.model);
    if (event.started) {
      tally.pending--;
      tally.pendingCounted = true;
    }
    if (!event.ok) {
      this.#failure.inc({ ...tally.labels, reason: event.reason ?? 'internal' });
      return;
    }
    const executions = event.items / event.batchSize;
    // prom-client refused these (a TypeError); kept so, before anything is counted.
    if (!Number.isFinite(executions) || executions < 0) {
      throw new TypeError(`not a valid share of a batch: ${executions}`);
    }
    tally.success++;
    tally.items += event.items;
    tally.executions += executions;
    tally.requestDuration.observe(event.totalMs / 1000);
    if (event.queueMs !== undefined) tally.queueDuration.observe(event.queueMs / 1000);
    if (event.computeMs !== undefined) tally.computeDuration.observe(event.computeMs / 1000);
    tally.batchSize.observe(event.batchSize);
  }

  #of(model: ObservedModel): ModelTally {
    let tally = this.#tallyOf.get(model);
    if (tally === undefined) {
      const l = labels(model);
      const key = JSON.stringify([l.model, l.version]);
      tally = this.#tallies.get(key);
      if (tally === undefined) {
        tally = {
          labels: l,
          pending: 0,
          pendingCounted: false,
          success: 0,
          items: 0,
          executions: 0,
          requestDuration: this.#requestDuration.series(l),
          queueDuration: this.#queueDuration.series(l),
          computeDuration: this.#computeDuration.series(l),
          batchSize: this.#batchSize.series(l),
        };
        this.#tallies.set(key, tally);
      }
      this.#tallyOf.set(model, tally);
    }
    return tally;
  }

  /** The exposition text, and its content type. */
  async scrape(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}

function labels(model: ObservedModel): ModelLabels {
  return { model: model.name, version: String(model.version) };
}

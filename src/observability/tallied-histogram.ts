/**
 * A Prometheus histogram for the hot path: each labelled series is a few plain numbers that an
 * observation updates in place, and the exposition is built only when /metrics is scraped. prom-client's
 * own Histogram validates the labels, hashes them into a string and allocates a closure on every
 * `observe`, even through a pre-bound child; with four histograms and four counter and gauge updates
 * per inference, prom-client took ~15–22 µs of the main thread's profiled time per small request
 * (bench/RESULTS.md, issue 16).
 *
 * It registers itself on prom-client registries (`registerMetric`, their public contract for a metric:
 * name, help, type, `get()`) and gives them the values in the shape prom-client's Histogram does, so
 * the text a scrape reads is the same: `_bucket` series with `le` (cumulative, `+Inf` last), `_sum`
 * and `_count`, a series appearing with its first observation.
 */
import type { Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

/** One labelled series: counts per bucket (not cumulative), their sum and count. */
export class HistogramSeries {
  readonly labels: Labels;
  readonly #bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(labels: Labels, bounds: readonly number[]) {
    this.labels = labels;
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.#bounds;
    // The first bucket whose upper bound holds it (`le`); above the last only +Inf, _sum and _count count it.
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

/** A value as prom-client's registry formats it: own labels (`le`), the series' labels after them. */
interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels?: Labels;
  value: number;
  metricName: string;
  exemplar?: null | undefined;
}

interface ExportedMetric {
  name: string;
  help: string;
  type: string;
  values: ExportedValue[];
  aggregator: string;
}

export class TalliedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  // How prom-client's cluster aggregation would combine workers' values; what its Histogram says.
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, HistogramSeries>();

  constructor(options: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  /** The series of these labels, made once (the caller keeps it); exported from its first observation on. */
  series(labels: Labels): HistogramSeries {
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    let series = this.#series.get(key);
    if (series === undefined) {
      series = new HistogramSeries(labels, this.#bounds);
      this.#series.set(key, series);
    }
    return series;
  }

  /** Back to no observations (a registry's `resetMetrics()`); the callers' series stay theirs. */
  reset(): void {
    for (const series of this.#series.values()) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }

  /** What prom-client's registry formats into the exposition text (its Histogram's shape). */
  getForPromString(): ExportedMetric {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const series of this.#series.values()) {
      if (series.count === 0) continue;
      const shared = series.labels;
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += series.counts[i];
        values.push({
          labels: { le: bound },
          sharedLabels: shared,
          value: cumulative,
          metricName: bucket,
          exemplar: null,
        });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: shared, value: series.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels: shared, value: series.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        {
          labels: {},
          sharedLabels: shared,
          value: series.count,
          metricName: `${this.name}_count`,
          exemplar: undefined,
        },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same values with each series' labels merged into its own, as prom-client's `get()` gives them. */
  get(): ExportedMetric {
    const metric = this.getForPromString();
    metric.values = metric.values.map(({ labels, sharedLabels, ...value }) => ({
      ...value,
      labels: { ...labels, ...sharedLabels },
    }));
    return metric;
  }
}

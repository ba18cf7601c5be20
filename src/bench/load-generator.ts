/**
 * A closed-loop load generator in the manner of perf_analyzer's concurrency mode: N requests in
 * flight at all times, bounded by a request count or a duration, after a warm-up; per level it
 * reports throughput, latency percentiles and the server's own queue/compute split.
 */
import { nearestRank } from '../observability/percentile.js';

/** What one request reports back: the server's side of its latency, when the server says. */
export interface Sample {
  serverQueueMs?: number;
  serverComputeMs?: number;
  batchSize?: number;
}

/** Sends one inference of `items` items and resolves when its answer is in; rejects on failure. */
export type SendOne = () => Promise<Sample>;

export interface LevelOptions {
  concurrency: number;
  /** Items per request (the request's batch dimension). */
  items: number;
  /** Stop after this many measured requests … */
  requests?: number;
  /** … or after this many seconds, whichever comes first. */
  durationS?: number;
  /** Requests sent and not measured, first. */
  warmup: number;
}

export interface LevelResult {
  concurrency: number;
  requests: number;
  errors: number;
  /** Items per second (inferences/s, as perf_analyzer counts them). */
  throughput: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Means of what the server reported; undefined when it reported nothing. */
  serverQueueMs?: number;
  serverComputeMs?: number;
  batchSize?: number;
  firstError?: string;
}

function mean(values: readonly number[]): number | undefined {
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;
}

export async function runLevel(send: SendOne, options: LevelOptions): Promise<LevelResult> {
  const limit = options.requests ?? Infinity;
  const durationMs = (options.durationS ?? Infinity) * 1000;
  if (limit === Infinity && durationMs === Infinity) throw new RangeError('runLevel needs requests or durationS');

  for (let sent = 0; sent < options.warmup; sent += options.concurrency) {
    await Promise.allSettled(Array.from({ length: Math.min(options.concurrency, options.warmup - sent) }, send));
  }

  const latencies: number[] = [];
  const samples: Sample[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let started = 0;
  const begin = performance.now();
  const more = () => started < limit && performance.now() - begin < durationMs;
  const loop = async () => {
    while (more()) {
      started++;
      const t = performance.now();
      try {
        samples.push(await send());
        latencies.push(performance.now() - t);
      } catch (error) {
        errors++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  const seconds = (performance.now() - begin) / 1000;

  latencies.sort((a, b) => a - b);
  const result: LevelResult = {
    concurrency: options.concurrency,
    requests: latencies.length,
    errors,
    throughput: (latencies.length * options.items) / seconds,
    meanMs: mean(latencies) ?? NaN,
    p50Ms: nearestRank(latencies, 50) ?? NaN,
    p90Ms: nearestRank(latencies, 90) ?? NaN,
    p95Ms: nearestRank(latencies, 95) ?? NaN,
    p99Ms: nearestRank(latencies, 99) ?? NaN,
  };
  const queue = mean(samples.flatMap((s) => (s.serverQueueMs === undefined ? [] : [s.serverQueueMs])));
  const compute = mean(samples.flatMap((s) => (s.serverComputeMs === undefined ? [] : [s.serverComputeMs])));
  const batch = mean(samples.flatMap((s) => (s.batchSize === undefined ? [] : [s.batchSize])));
  if (queue !== undefined) result.serverQueueMs = queue;
  if (compute !== undefined) result.serverComputeMs = compute;
  if (batch !== undefined) result.batchSize = batch;
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

const COLUMNS: Array<[string, (r: LevelResult) => string]> = [
  ['concurrency', (r) => String(r.concurrency)],
  ['infer/s', (r) => r.throughput.toFixed(1)],
  ['p50 ms', (r) => r.p50Ms.toFixed(2)],
  ['p90 ms', (r) => r.p90Ms.toFixed(2)],
  ['p95 ms', (r) => r.p95Ms.toFixed(2)],
  ['p99 ms', (r) => r.p99Ms.toFixed(2)],
  ['server queue ms', (r) => r.serverQueueMs?.toFixed(2) ?? '-'],
  ['server compute ms', (r) => r.serverComputeMs?.toFixed(2) ?? '-'],
  [
    'client+network ms',
    (r) => (r.serverQueueMs === undefined ? '-' : (r.meanMs - r.serverQueueMs - (r.serverComputeMs ?? 0)).toFixed(2)),
  ],
  ['batch', (r) => r.batchSize?.toFixed(1) ?? '-'],
  ['requests', (r) => String(r.requests)],
  ['errors', (r) => String(r.errors)],
];

export function formatTable(results: readonly LevelResult[]): string {
  const rows = [COLUMNS.map(([name]) => name), ...results.map((r) => COLUMNS.map(([, cell]) => cell(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => cell.padStart(widths[i])).join('  ')).join('\n');
}

export function formatCsv(results: readonly LevelResult[]): string {
  return [
    COLUMNS.map(([name]) => name).join(','),
    ...results.map((r) => COLUMNS.map(([, cell]) => cell(r)).join(',')),
  ].join('\n');
}

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ServerMetrics } from '../../src/observability/metrics.js';
import { TalliedHistogram } from '../../src/observability/tallied-histogram.js';

/** A deterministic stream of numbers in [0, 1). */
function numbers(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 16807) % 2147483647) / 2147483647;
}

/** The exposition lines of the metrics whose names start with `prefix`, HELP and TYPE included. */
async function exposition(registry: Registry, prefix: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split('\n').filter((line) => line.includes(prefix));
}

describe('TalliedHistogram', () => {
  it('scrapes as prom-client’s own Histogram does for the same observations, boundaries and odd labels included', async () => {
    const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    const ours = new Registry();
    const reference = new Registry();
    const tallied = new TalliedHistogram({ name: 'h_seconds', help: 'A "help" text', buckets, registers: [ours] });
    const histogram = new Histogram({
      name: 'h_seconds',
      help: 'A "help" text',
      labelNames: ['model', 'version'],
      buckets,
      registers: [reference],
    });
    const label = [
      { model: 'a', version: '1' },
      { model: 'b"\\x\ny', version: '2' },
      { version: '3', model: 'c' },
    ];
    const next = numbers(7);
    const boundaries = [0, 0.001, 0.0025, 1, 10, 10.5, 1e9];
    for (let i = 0; i < 600; i++) {
      const labels = label[i % 3];
      const value = i < boundaries.length ? boundaries[i] : next() ** 4 * 20;
      tallied.series(labels).observe(value);
      histogram.observe(labels, value);
    }
    // A series asked for but never observed is not listed, as prom-client lists only observed ones.
    tallied.series({ model: 'idle', version: '1' });
    assert.deepEqual(await exposition(ours, 'h_seconds'), await exposition(reference, 'h_seconds'));
    assert.deepEqual(tallied.get(), await histogram.get());
  });

  it('gives the same series for the same labels in any order, and refuses a value that is not a number', () => {
    const tallied = new TalliedHistogram({ name: 'h', help: 'h', buckets: [1], registers: [] });
    assert.equal(tallied.series({ model: 'a', version: '1' }), tallied.series({ version: '1', model: 'a' }));
    assert.throws(() => tallied.series({ model: 'a', version: '1' }).observe(Number.NaN), TypeError);
  });

  it('starts again from no observations when its registry resets its metrics', async () => {
    const registry = new Registry();
    const tallied = new TalliedHistogram({ name: 'h', help: 'h', buckets: [1], registers: [registry] });
    const series = tallied.series({ model: 'a', version: '1' });
    series.observe(0.5);
    assert.ok((await exposition(registry, 'h_count')).includes('h_count{model="a",version="1"} 1'));
    registry.resetMetrics();
    assert.deepEqual(await exposition(registry, 'h_'), []);
    series.observe(2);
    assert.deepEqual(await exposition(registry, 'h_bucket'), [
      'h_bucket{le="1",model="a",version="1"} 0',
      'h_bucket{le="+Inf",model="a",version="1"} 1',
    ]);
  });
});

describe('ServerMetrics from tallies', () => {
  it('scrapes what prom-client’s counters, gauge and histograms would hold after the same inferences', async () => {
    const metrics = new ServerMetrics(() => []);
    const reference = new Registry();
    const labelNames = ['model', 'version'];
    const counter = (name: string, names = labelNames) =>
      new Counter({ name: `onnx_serve_${name}`, help: name, labelNames: names, registers: [reference] });
    const success = counter('inference_request_success_total');
    const failure = counter('inference_request_failure_total', [...labelNames, 'reason']);
    const items = counter('inference_count_total');
    const executions = counter('inference_exec_count_total');
    const pending = new Gauge({
      name: 'onnx_serve_inference_pending_request_count',
      help: 'p',
      labelNames,
      registers: [reference],
    });
    const histogram = (name: string, buckets?: number[]) =>
      new Histogram({ name: `onnx_serve_${name}`, help: name, labelNames, registers: [reference], buckets });
    const requestDuration = histogram(
      'inference_request_duration_seconds',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
    const batchSize = histogram('inference_batch_size', [1, 2, 4, 8, 16, 32, 64, 128]);

    // Two model objects with one name and version (a reload) share their series.
    const models = [
      { name: 'a', version: 1 },
      { name: 'a', version: 1 },
      { name: 'b', version: 2 },
    ];
    const next = numbers(11);
    for (let i = 0; i < 300; i++) {
      const model = models[i % 3];
      const labels = { model: model.name, version: String(model.version) };
      const started = i % 7 !== 0;
      if (started) {
        metrics.started({ model });
        pending.inc(labels);
      }
      const ok = next() > 0.25;
      const count = 1 + Math.floor(next() * 4);
      const batch = count + (i % 3);
      const totalMs = next() * 2000;
      metrics.finished({
        model,
        ok,
        reason: ok ? undefined : 'timeout',
        totalMs,
        items: count,
        batchSize: batch,
        started,
      });
      if (started) pending.dec(labels);
      if (!ok) {
        failure.inc({ ...labels, reason: 'timeout' });
        continue;
      }
      success.inc(labels);
      items.inc(labels, count);
      executions.inc(labels, count / batch);
      requestDuration.observe(labels, totalMs / 1000);
      batchSize.observe(labels, batch);
    }
    metrics.started({ model: { name: 'c', version: 3 } });
    pending.inc({ model: 'c', version: '3' });

    const ours = (await metrics.scrape()).text.split('\n');
    const theirs = (await reference.metrics()).split('\n');
    // Values and labels, not the HELP texts (the reference's are placeholders).
    const series = (lines: string[], name: string) =>
      lines.filter((line) => line.startsWith(`onnx_serve_${name}`)).sort();
    for (const name of [
      'inference_request_success_total',
      'inference_request_failure_total',
      'inference_count_total',
      'inference_exec_count_total',
      'inference_pending_request_count',
      'inference_request_duration_seconds',
      'inference_batch_size',
    ]) {
      const expected = series(theirs, name);
      assert.ok(expected.length > 0, name);
      assert.deepEqual(series(ours, name), expected, name);
    }
  });
});

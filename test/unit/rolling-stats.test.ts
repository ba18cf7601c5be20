import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nearestRank } from '../../src/observability/percentile.js';
import { RollingStats } from '../../src/observability/rolling-stats.js';

const ok = (totalMs: number) => ({ ok: true, totalMs, queueMs: totalMs / 10, computeMs: totalMs / 2, batchSize: 1 });
const failed = (totalMs: number) => ({ ok: false, totalMs, batchSize: 1 });

describe('nearest-rank percentiles', () => {
  it('are the smallest value with at least p % of the values at or below it', () => {
    const hundred = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    assert.deepEqual(
      [50, 95, 99, 100].map((p) => nearestRank(hundred, p)),
      [50, 95, 99, 100],
    );
    // 20 values: p95 is rank ceil(19) = 19, not the seed's off-by-one rank 20.
    const twenty = Float64Array.from({ length: 20 }, (_, i) => (i + 1) * 10);
    assert.deepEqual(
      [50, 95, 99].map((p) => nearestRank(twenty, p)),
      [100, 190, 200],
    );
    assert.equal(nearestRank([7], 50), 7);
    assert.equal(nearestRank([], 50), null);
  });
});

describe('rolling statistics', () => {
  it('summarises a known sequence exactly, failures counted apart from latency', () => {
    const stats = new RollingStats({ windowSize: 100, now: () => 0 });
    // 1..10 ms in shuffled order, plus two failures whose (short) times must not count as latency.
    for (const ms of [7, 3, 10, 1, 9, 2, 8, 4, 6, 5]) stats.record(ok(ms));
    stats.record(failed(0.5));
    stats.record(failed(0.5));
    const s = stats.snapshot();
    assert.equal(s.count, 12);
    assert.equal(s.errors, 2);
    assert.equal(s.mean_ms, 5.5);
    assert.equal(s.min_ms, 1);
    assert.equal(s.max_ms, 10);
    assert.equal(s.p50_ms, 5);
    assert.equal(s.p95_ms, 10);
    assert.equal(s.p99_ms, 10);
    assert.equal(s.compute_p50_ms, 2.5);
    assert.equal(s.batch_size_mean, 1);
    assert.equal(s.status, 'healthy');
    assert.equal(s.latency_alert_ms, 150);
    assert.equal(s.window_size, 100);
  });

  it('keeps only the last N samples', () => {
    const stats = new RollingStats({ windowSize: 5, now: () => 0 });
    for (let ms = 1; ms <= 12; ms++) stats.record(ok(ms));
    const s = stats.snapshot();
    assert.equal(s.count, 5);
    assert.equal(s.min_ms, 8);
    assert.equal(s.max_ms, 12);
    assert.equal(s.mean_ms, 10);
  });

  it('turns degraded when p95 crosses the threshold, and healthy again once slow samples leave the window', () => {
    const stats = new RollingStats({ windowSize: 20, latencyAlertMs: 100, now: () => 0 });
    for (let i = 0; i < 20; i++) stats.record(ok(50));
    assert.equal(stats.snapshot().status, 'healthy');
    // One slow request in 20 is the top 5 %: p95 (rank 19) is still fast.
    stats.record(ok(500));
    assert.equal(stats.snapshot().p95_ms, 50);
    assert.equal(stats.snapshot().status, 'healthy');
    stats.record(ok(500));
    assert.equal(stats.snapshot().p95_ms, 500);
    assert.equal(stats.snapshot().status, 'degraded');
    // A p95 equal to the threshold is not above it.
    for (let i = 0; i < 19; i++) stats.record(ok(100));
    assert.equal(stats.snapshot().p95_ms, 100);
    assert.equal(stats.snapshot().status, 'healthy');
  });

  it('measures throughput over the last 10 whole seconds', () => {
    let now = 0;
    const stats = new RollingStats({ now: () => now });
    for (let second = 0; second < 15; second++) {
      now = second * 1000 + 500;
      for (let i = 0; i < second; i++) stats.record(ok(1));
      if (second % 5 === 0) stats.record(failed(1));
    }
    now = 15_000;
    // Seconds 5..14 hold 5 + 6 + … + 14 = 95 successes and failures at seconds 5 and 10.
    assert.equal(stats.snapshot().throughput_per_s, 9.5);
    assert.equal(stats.snapshot().errors_per_s, 0.2);
    now = 40_000;
    assert.equal(stats.snapshot().throughput_per_s, 0);
  });

  it('rejects a window size that is not a positive integer', () => {
    assert.throws(() => new RollingStats({ windowSize: 0 }), {
      name: 'RangeError',
      message: 'windowSize must be a positive integer, got 0',
    });
  });
});

/**
 * Metrics, statistics and logs of the real server after a known set of good and bad requests:
 * the counts are exact, the slow-inference log names the request, and a burst is summarised.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/server/start.js';
import { capturingLogger } from '../helpers/log-capture.js';
import { OCR_ASSETS } from '../helpers/ocr.js';
import { parseExposition, sampleValue, type Sample } from '../helpers/prometheus.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

const CLS = path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const WARMUP = 'warmup:\n  runs: 1\n  inputs:\n    x:\n      shape: [1, 3, 48, 192]\n';
const request = (batch = 1) => ({
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [batch, 3, 48, 192], data: new Array(batch * 3 * 48 * 192).fill(0.5) },
  ],
});

let dir: string;
let server: RunningServer;
const { log, lines } = capturingLogger();

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-observability-'));
  const model = async (name: string, config: string, file = CLS) => {
    await mkdir(path.join(dir, name, '1'), { recursive: true });
    await copyFile(file, path.join(dir, name, '1', 'model.onnx'));
    await writeFile(path.join(dir, name, 'config.yaml'), config);
  };
  // A threshold no request reaches, however loaded the machine: its status must stay healthy.
  await model('counted', `latency_alert_ms: 600000\n${WARMUP}`);
  await model('slow', `latency_alert_ms: 0.001\n${WARMUP}`);
  await model('broken', '', path.join(OCR_ASSETS, 'ppocr_keys_v1.txt'));
  server = await startTestServer({
    modelRepository: dir,
    logger: log,
    strictReadiness: false,
    // A limit the test can reach, and an interval it never outlasts: the summary comes at close.
    observability: { log: { linesPerInterval: 5, intervalMs: 600_000 } },
  });
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function scrape(url = server.url): Promise<Sample[]> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await response.text());
}

describe('Prometheus metrics', () => {
  it('count exactly the good and bad requests, with histograms of as many samples', async () => {
    const infer = `${server.url}/v2/models/counted/infer`;
    for (let i = 0; i < 4; i++) assert.equal((await postJson(infer, request())).status, 200);
    assert.equal((await postJson(infer, request(2))).status, 200);
    // Invalid: a wrong shape (found in runInference), an empty body and broken JSON (found before it).
    assert.equal((await postJson(infer, { inputs: [{ ...request().inputs[0], shape: [1, 4, 48, 192] }] })).status, 400);
    assert.equal((await postJson(infer, '')).status, 400);
    assert.equal((await postJson(infer, '{"inputs": [')).status, 400);
    // Rejected: the model failed to load. Not counted: versions and models that do not exist.
    assert.equal((await postJson(`${server.url}/v2/models/broken/infer`, request())).status, 503);
    assert.equal((await postJson(`${server.url}/v2/models/counted/versions/9/infer`, request())).status, 404);
    assert.equal((await postJson(`${server.url}/v2/models/nothing/infer`, request())).status, 404);

    const samples = await scrape();
    const counted = { model: 'counted', version: '1' };
    const value = (name: string, labels: Record<string, string> = counted) =>
      sampleValue(samples, `onnx_serve_${name}`, labels);
    assert.equal(value('inference_request_success_total'), 5);
    assert.equal(value('inference_request_failure_total', { ...counted, reason: 'invalid' }), 3);
    assert.equal(value('inference_request_failure_total', { model: 'broken', version: '1', reason: 'rejected' }), 1);
    assert.deepEqual(
      samples.filter((s) => s.name === 'onnx_serve_inference_request_failure_total').map((s) => s.labels),
      [
        { model: 'counted', version: '1', reason: 'invalid' },
        { model: 'broken', version: '1', reason: 'rejected' },
      ],
    );
    assert.equal(value('inference_count_total'), 6);
    assert.equal(value('inference_exec_count_total'), 5);
    assert.equal(value('inference_pending_request_count'), 0);
    for (const histogram of ['request_duration_seconds', 'queue_duration_seconds', 'compute_duration_seconds']) {
      assert.equal(value(`inference_${histogram}_count`), 5, histogram);
      assert.equal(value(`inference_${histogram}_bucket`, { ...counted, le: '+Inf' }), 5, histogram);
    }
    assert.equal(value('inference_batch_size_count'), 5);
    assert.equal(value('inference_batch_size_sum'), 6);
    assert.equal(value('inference_batch_size_bucket', { ...counted, le: '1' }), 4);
    assert.equal(value('inference_batch_size_bucket', { ...counted, le: '2' }), 5);
    assert.equal(value('model_ready'), 1);
    assert.equal(value('model_ready', { model: 'broken', version: '1' }), 0);
    assert.ok(value('model_load_duration_seconds')! > 0);
    assert.ok(value('model_warmup_duration_seconds')! > 0);
    assert.equal(value('model_load_duration_seconds', { model: 'broken', version: '1' }), undefined);
    // Process metrics, under their standard names.
    for (const name of [
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      assert.ok(sampleValue(samples, name)! > 0, name);
    }
  });

  it('belong to their own server when two run in one process', async () => {
    const other = await startTestServer({ modelFiles: [CLS] });
    try {
      const modelName = path.basename(CLS, '.onnx');
      assert.equal((await postJson(`${other.url}/v2/models/${modelName}/infer`, request())).status, 200);
      const theirs = await scrape(other.url);
      assert.equal(sampleValue(theirs, 'onnx_serve_inference_request_success_total', { model: modelName }), 1);
      assert.equal(sampleValue(theirs, 'onnx_serve_inference_request_success_total', { model: 'counted' }), undefined);
      const ours = await scrape();
      assert.equal(sampleValue(ours, 'onnx_serve_inference_request_success_total', { model: modelName }), undefined);
    } finally {
      await other.close();
    }
  });
});

describe('statistics', () => {
  it('follow Triton statistics extension, with the rolling window added', async () => {
    const { status, body } = await getJson(`${server.url}/v2/models/counted/stats`);
    assert.equal(status, 200);
    assert.equal(body.model_stats.length, 1);
    const stats = body.model_stats[0];
    assert.equal(stats.name, 'counted');
    assert.equal(stats.version, '1');
    assert.equal(stats.state, 'READY');
    assert.equal(stats.inference_count, 6);
    assert.equal(stats.execution_count, 5);
    assert.equal(stats.pending_request_count, 0);
    assert.equal(stats.inference_stats.success.count, 5);
    assert.equal(stats.inference_stats.fail.count, 3);
    assert.equal(stats.inference_stats.queue.count, 5);
    assert.equal(stats.inference_stats.compute_infer.count, 5);
    assert.ok(stats.inference_stats.compute_infer.ns > 0);
    assert.deepEqual(stats.failures_by_reason, { invalid: 3 });
    const { rolling } = stats;
    assert.equal(rolling.count, 8);
    assert.equal(rolling.errors, 3);
    assert.ok(rolling.min_ms <= rolling.p50_ms && rolling.p50_ms <= rolling.p95_ms && rolling.p95_ms <= rolling.p99_ms);
    assert.equal(rolling.p99_ms, rolling.max_ms);
    assert.equal(rolling.status, 'healthy');
    assert.equal(rolling.latency_alert_ms, 600000);
    assert.equal(rolling.window_size, 1000);

    const versioned = await getJson(`${server.url}/v2/models/counted/versions/1/stats`);
    assert.equal(versioned.body.model_stats[0].inference_count, 6);
    const all = await getJson(`${server.url}/v2/models/stats`);
    assert.deepEqual(all.body.model_stats.map((s: any) => [s.name, s.state]).sort(), [
      ['broken', 'UNAVAILABLE'],
      ['counted', 'READY'],
      ['slow', 'READY'],
    ]);
    const unknown = await getJson(`${server.url}/v2/models/nothing/stats`);
    assert.equal(unknown.status, 404);
    assert.equal(
      unknown.body.error,
      "Request for unknown model: 'nothing' is not found; models served: broken, counted, slow",
    );
  });

  it('are advertised as the statistics extension', async () => {
    assert.ok((await getJson(`${server.url}/v2`)).body.extensions.includes('statistics'));
  });
});

describe('logs and request ids', () => {
  it('echo X-Request-Id, or a generated one', async () => {
    const given = await postJson(`${server.url}/v2/models/slow/infer`, request(), { 'x-request-id': 'slow-1' });
    assert.equal(given.status, 200);
    assert.equal(given.headers.get('x-request-id'), 'slow-1');
    const generated = await getJson(`${server.url}/v2/health/live`);
    assert.match(
      generated.headers.get('x-request-id')!,
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
  });

  it('write one warning for a slow inference, with its fields', () => {
    const warnings = lines.filter((l) => l.requestId === 'slow-1');
    assert.equal(warnings.length, 1);
    const { level, model, version, durationMs, queueMs, computeMs, batchSize, thresholdMs, msg } = warnings[0];
    assert.deepEqual(
      { level, model, version, batchSize, thresholdMs },
      {
        level: 40,
        model: 'slow',
        version: 1,
        batchSize: 1,
        thresholdMs: 0.001,
      },
    );
    assert.ok(durationMs > 0 && queueMs >= 0 && computeMs > 0);
    assert.equal(msg, `slow inference on slow:1: ${durationMs} ms, over the 0.001 ms alert threshold`);
  });

  it('mark the model degraded while its p95 is over the threshold', async () => {
    const { body } = await getJson(`${server.url}/v2/models/slow/stats`);
    assert.equal(body.model_stats[0].rolling.status, 'degraded');
    assert.equal(body.model_stats[0].rolling.latency_alert_ms, 0.001);
  });

  it('write one line per failed inference', () => {
    const failures = lines.filter((l) => l.msg.startsWith('inference failed'));
    assert.deepEqual(
      failures.map((l) => [l.model, l.reason, l.level]),
      [
        ['counted', 'invalid', 40],
        ['counted', 'invalid', 40],
        ['counted', 'invalid', 40],
        ['broken', 'rejected', 40],
      ],
    );
    assert.equal(failures[0].error, 'inputs[0].shape[1] must be 3 (model counted, input x), got 4');
  });

  it('summarise a burst of slow inferences instead of flooding the log', async () => {
    const burst = Array.from({ length: 8 }, (_, i) =>
      postJson(`${server.url}/v2/models/slow/infer`, request(), { 'x-request-id': `burst-${i}` }),
    );
    for (const response of await Promise.all(burst)) assert.equal(response.status, 200);
    // 5 lines per interval: the first slow request and 4 of the burst; the other 4 are counted.
    assert.equal(lines.filter((l) => l.msg.startsWith('slow inference')).length, 5);
    await server.close();
    const summary = lines.filter((l) => l.suppressed !== undefined);
    assert.deepEqual(
      summary.map(({ kind, suppressed, logged, msg }) => ({ kind, suppressed, logged, msg })),
      [
        {
          kind: 'slow inference',
          suppressed: 4,
          logged: 5,
          msg: '4 more slow inference line(s) suppressed (at most 5 per 600 s)',
        },
      ],
    );
  });
});

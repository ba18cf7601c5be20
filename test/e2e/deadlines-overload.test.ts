/**
 * Deadlines and overload on the real server (issue 7, deliverables 3 and 4): a queued request past
 * its deadline (Triton's `timeout` parameter or the model's default_timeout_microseconds) gets 504
 * and is never computed; a request longer than the default is held to the default, one with
 * override off is held to none; a client that hangs up takes its queued request with it; a burst far
 * beyond a small queue gets only 200s and 503s with Retry-After while health checks answer.
 * Behaviour only: the timings of overload are measured by bench/overload.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeRequest, postInference, type InferAnswer } from '../../src/bench/wire.js';
import type { InferenceRequest } from '../../src/protocol/json-codec.js';
import type { RunningServer } from '../../src/server/start.js';
import { writeRepositoryModel } from '../helpers/onnx-builder.js';
import { OCR_ASSETS } from '../helpers/ocr.js';
import { getJson, startTestServer } from '../helpers/server.js';

const DETECTOR = path.join(OCR_ASSETS, 'ch_PP-OCRv4_det_infer.onnx');
const ORIENTATION = path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

// One slow instance without batching: a big first request holds it while the others queue.
const slowModel = (batching: string) =>
  `source: ${JSON.stringify(DETECTOR)}\ninstances: 1\nmax_batch_size: 0\ndynamic_batching: ${batching}\nwarmup: { runs: 1, inputs: { x: { shape: [1, 3, 64, 64] } } }\n`;

let repository: string;
let server: RunningServer;

before(async () => {
  repository = await mkdtemp(path.join(tmpdir(), 'onnx-serve-deadlines-'));
  await writeRepositoryModel(repository, 'slow', undefined, slowModel('{ default_timeout_microseconds: 30000 }'));
  await writeRepositoryModel(repository, 'strict', undefined, slowModel('{ allow_timeout_override: false }'));
  await writeRepositoryModel(
    repository,
    'orientation',
    undefined,
    `source: ${JSON.stringify(ORIENTATION)}\ninstances: 1\nmax_batch_size: 8\ndynamic_batching: { max_queue_size: 4 }\nwarmup: { runs: 1, inputs: { x: { shape: [1, 3, 48, 192] } } }\n`,
  );
  server = await startTestServer({ modelRepository: repository });
  assert.deepEqual(
    server.registry.versions().map((v) => `${v.name}:${v.state}`),
    ['orientation:READY', 'slow:READY', 'strict:READY'],
  );
});

after(async () => {
  await server?.close();
  await rm(repository, { recursive: true, force: true });
});

const inferUrl = (model: string) => `${server.url}/v2/models/${model}/infer`;

function image(batch: number, side: number, parameters?: InferenceRequest['parameters']) {
  const request: InferenceRequest = {
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [batch, 3, side, side], data: new Float32Array(batch * 3 * side * side) },
    ],
  };
  if (parameters !== undefined) request.parameters = parameters;
  return encodeRequest(request, 'binary');
}

async function stats(model: string) {
  const { body } = await getJson(`${server.url}/v2/models/${model}/stats`);
  return (
    body as {
      model_stats: Array<{
        inference_count: number;
        pending_request_count: number;
        failures_by_reason: Record<string, number>;
      }>;
    }
  ).model_stats[0];
}

/** Polls the model's stats until the condition holds (bounded: 200 tries, 10 ms apart). */
async function until(model: string, what: string, condition: (s: Awaited<ReturnType<typeof stats>>) => boolean) {
  for (let tries = 0; tries < 200; tries++) {
    const current = await stats(model);
    if (condition(current)) return current;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`model ${model}: expected ${what} within 200 polls; stats ${JSON.stringify(await stats(model))}`);
}

const WAITED = String.raw`timed out after waiting \d+(\.\d+)? ms in the queue`;

describe('deadlines', () => {
  it('drops queued requests past the model default or a shorter request timeout with 504, never computing them', async () => {
    const before = await stats('slow');
    const busy = postInference(inferUrl('slow'), image(2, 640));
    await until('slow', 'the first request running', (s) => s.pending_request_count === 1);
    const [first, longer, shorter] = await Promise.all([
      busy,
      postInference(inferUrl('slow'), image(1, 64, { timeout: 10_000_000 })),
      postInference(inferUrl('slow'), image(1, 64, { timeout: 5000 })),
    ]);
    assert.equal(first.status, 200, first.error);
    assert.equal(longer.status, 504);
    assert.match(
      longer.error!,
      new RegExp(
        `^request to model slow:1 ${WAITED}: its deadline was 30000 µs \\(dynamic_batching\\.default_timeout_microseconds\\); it was not run$`,
      ),
    );
    assert.equal(shorter.status, 504);
    assert.match(
      shorter.error!,
      new RegExp(
        `^request to model slow:1 ${WAITED}: its deadline was 5000 µs \\(parameters\\.timeout\\); it was not run$`,
      ),
    );
    const after = await stats('slow');
    assert.equal(after.inference_count - before.inference_count, 2, 'only the first request (2 items) was computed');
    assert.equal((after.failures_by_reason.timeout ?? 0) - (before.failures_by_reason.timeout ?? 0), 2);
  });

  it('ignores a request timeout when allow_timeout_override is false, and refuses a malformed one', async () => {
    const busy = postInference(inferUrl('strict'), image(2, 640));
    await until('strict', 'the first request running', (s) => s.pending_request_count === 1);
    const patient = postInference(inferUrl('strict'), image(1, 64, { timeout: 1000 }));
    assert.equal((await busy).status, 200);
    assert.equal((await patient).status, 200, 'a 1000 µs timeout is ignored: the model allows no override');
    const bad = await postInference(inferUrl('slow'), image(1, 64, { timeout: 'soon' }));
    assert.equal(bad.status, 400);
    assert.equal(
      bad.error,
      'parameters.timeout must be a non-negative integer of microseconds (Triton\'s request timeout), got "soon"',
    );
  });

  it('takes the queued request of a client that hung up out of the queue, unrun', async () => {
    const before = await stats('strict');
    const busy = postInference(inferUrl('strict'), image(4, 640));
    await until('strict', 'the first request running', (s) => s.pending_request_count === 1);
    const controller = new AbortController();
    const encoded = image(1, 64);
    const gone = fetch(inferUrl('strict'), {
      method: 'POST',
      headers: encoded.headers,
      body: encoded.body,
      signal: controller.signal,
    }).then(
      () => 'answered',
      (error: Error) => error.name,
    );
    await until('strict', 'the second request queued', (s) => s.pending_request_count === 2);
    controller.abort();
    assert.equal(await gone, 'AbortError');
    const cancelled = await until(
      'strict',
      'a cancelled request',
      (s) => (s.failures_by_reason.cancelled ?? 0) > (before.failures_by_reason.cancelled ?? 0),
    );
    assert.equal(cancelled.pending_request_count, 1, 'only the running request is left');
    assert.equal((await busy).status, 200);
    const after = await stats('strict');
    assert.equal(after.inference_count - before.inference_count, 4, 'only the first request (4 items) was computed');
  });
});

describe('overload', () => {
  it('answers a burst far beyond max_queue_size with 200 or 503 + Retry-After only, keeps health live, then serves', async () => {
    const orientation = encodeRequest(
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192) }] },
      'binary',
    );
    const burst: Array<Promise<InferAnswer>> = [];
    const health: Array<Promise<number>> = [];
    for (let wave = 0; wave < 5; wave++) {
      for (let i = 0; i < 60; i++) burst.push(postInference(inferUrl('orientation'), orientation));
      health.push(fetch(`${server.url}/v2/health/live`).then((reply) => reply.status));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const answers = await Promise.all(burst);
    const byStatus = new Map<number, number>();
    for (const answer of answers) byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
    assert.deepEqual([...byStatus.keys()].sort(), [200, 503], `statuses ${JSON.stringify([...byStatus])}`);
    for (const answer of answers.filter((a) => a.status === 503)) {
      assert.equal(answer.headers.get('retry-after'), '1');
      assert.match(
        answer.error!,
        /^model orientation:1 is overloaded: 4 requests are queued \(max_queue_size 4\); retry later$/,
      );
    }
    assert.deepEqual(await Promise.all(health), [200, 200, 200, 200, 200]);
    const afterwards = await postInference(inferUrl('orientation'), orientation);
    assert.equal(afterwards.status, 200, afterwards.error);
    assert.deepEqual(
      afterwards.response?.outputs.map((o) => o.shape),
      [[1, 2]],
    );
  });
});

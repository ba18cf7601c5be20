/**
 * Dynamic batching and the bounded queue on the real server: concurrent requests with different
 * data (some carrying batch > 1, some of other widths) each get exactly the outputs they get alone;
 * a model whose outputs turn out not to be batched falls back to running requests alone; a full
 * queue answers 503 with Retry-After and the model serves again once it drains.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { encodeRequest, postInference } from '../../src/bench/wire.js';
import type { NamedTensor } from '../../src/protocol/datatypes.js';
import type { RunningServer } from '../../src/server/start.js';
import { buildModel, writeRepositoryModel } from '../helpers/onnx-builder.js';
import { OCR_ASSETS } from '../helpers/ocr.js';
import { startTestServer } from '../helpers/server.js';

const ORIENTATION = path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const RECOGNIZER = path.join(OCR_ASSETS, 'ch_PP-OCRv4_rec_infer.onnx');
const DETECTOR = path.join(OCR_ASSETS, 'ch_PP-OCRv4_det_infer.onnx');

// A long delay makes concurrent requests meet in one batch however slowly the test machine sends them.
const batchingConfig = (file: string, maxBatch: number) => `
source: ${JSON.stringify(file)}
instances: 1
max_batch_size: ${maxBatch}
dynamic_batching: { max_queue_delay_ms: 400 }
warmup: { runs: 1, inputs: { x: { shape: [1, 3, 48, 192] } } }
`;

let repository: string;
let server: RunningServer;
const logLines: Array<{ msg: string; level: number }> = [];

before(async () => {
  repository = await mkdtemp(path.join(tmpdir(), 'onnx-serve-batching-'));
  await writeRepositoryModel(repository, 'orientation', undefined, batchingConfig(ORIENTATION, 16));
  await writeRepositoryModel(repository, 'recognizer', undefined, batchingConfig(RECOGNIZER, 8));
  await writeRepositoryModel(
    repository,
    'transposed',
    buildModel(
      [{ name: 'x', datatype: 'FP32', dims: ['batch', 'n'] }],
      [{ name: 'y', datatype: 'FP32', dims: ['n', 'batch'] }],
      [{ op: 'Transpose', inputs: ['x'], outputs: ['y'], ints: { perm: [1, 0] } }],
    ),
    'max_batch_size: 4\ndynamic_batching: { max_queue_delay_ms: 400 }\nwarmup: { runs: 1 }\n',
  );
  await writeRepositoryModel(
    repository,
    'detector',
    undefined,
    `source: ${JSON.stringify(DETECTOR)}\ninstances: 1\nmax_batch_size: 0\ndynamic_batching: { max_queue_size: 1 }\nwarmup: { runs: 1 }\n`,
  );
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void logLines.push(JSON.parse(line) as { msg: string; level: number }) },
  );
  server = await startTestServer({ modelRepository: repository, logger });
  assert.deepEqual(
    server.registry.versions().map((v) => `${v.name}:${v.state}`),
    ['detector:READY', 'orientation:READY', 'recognizer:READY', 'transposed:READY'],
  );
});

after(async () => {
  await server?.close();
  await rm(repository, { recursive: true, force: true });
});

/** Different data for every request: a ramp offset by the seed. */
function ramp(shape: number[], seed: number): Float32Array {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.01 + seed) * 0.9;
  return data;
}

/** The model's outputs for one request, run alone in this process: the unbatched truth. */
async function alone(file: string, shape: number[], data: Float32Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  try {
    const results = await session.run({ x: new ort.Tensor('float32', data, shape) });
    return results[session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}

function assertClose(actual: NamedTensor['data'], expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: element count`);
  for (let i = 0; i < expected.length; i++) {
    const a = Number(actual[i]);
    if (Math.abs(a - expected[i]) > 1e-4 + 1e-4 * Math.abs(expected[i])) {
      assert.fail(`${what}: element ${i} is ${a}, alone it is ${expected[i]}`);
    }
  }
}

async function inferConcurrently(model: string, shapes: number[][], seedBase: number) {
  const requests = shapes.map((shape, index) => ({ shape, data: ramp(shape, seedBase + index) }));
  const answers = await Promise.all(
    requests.map(({ shape, data }, index) =>
      postInference(
        `${server.url}/v2/models/${model}/infer`,
        // Half binary, half JSON: both encodings join the same batches.
        encodeRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape, data }] }, index % 2 === 0 ? 'binary' : 'json'),
      ),
    ),
  );
  for (const answer of answers) assert.equal(answer.status, 200, answer.error);
  return requests.map((request, index) => ({ ...request, response: answers[index].response! }));
}

describe('dynamic batching', () => {
  it('gives every request of a batch exactly its own outputs, batch > 1 requests included', async () => {
    const shapes = [[1], [2], [1], [3], [1], [1]].map(([n]) => [n, 3, 48, 192]);
    const results = await inferConcurrently('orientation', shapes, 0);
    for (const [index, { shape, data, response }] of results.entries()) {
      assert.deepEqual(response.outputs[0].shape, [shape[0], 2]);
      assertClose(response.outputs[0].data, await alone(ORIENTATION, shape, data), `request ${index}`);
    }
    const batchSizes = results.map((r) => r.response.header.parameters?.batch_size);
    // All nine items queued within the delay: one batch of all of them.
    assert.deepEqual(batchSizes, [9, 9, 9, 9, 9, 9]);
  });

  it('never merges requests whose inner dimensions differ', async () => {
    const shapes = [320, 160, 320, 160].map((width, index) => [index === 3 ? 2 : 1, 3, 48, width]);
    const results = await inferConcurrently('recognizer', shapes, 10);
    for (const [index, { shape, data, response }] of results.entries()) {
      assertClose(
        response.outputs[0].data,
        await alone(RECOGNIZER, shape, data),
        `request ${index} (width ${shape[3]})`,
      );
    }
    // Width 320: two requests of one item; width 160: one item and two items.
    assert.deepEqual(
      results.map((r) => r.response.header.parameters?.batch_size),
      [2, 3, 2, 3],
    );
  });

  it('runs requests alone once a model turns out not to batch its outputs, and says why', async () => {
    const shapes = [
      [1, 3],
      [1, 3],
    ];
    const results = await inferConcurrently('transposed', shapes, 20);
    for (const { data, response } of results) {
      assert.deepEqual(response.outputs[0].shape, [3, 1]);
      assert.deepEqual([...(response.outputs[0].data as Float32Array)], [...data]);
      assert.equal(response.header.parameters?.batch_size, 1);
    }
    assert.ok(
      logLines.some(
        (line) =>
          line.level === 40 &&
          line.msg ===
            'model transposed:1: dynamic batching off: output y has shape [3, 2] for a batch of 2: its first dimension is not the batch',
      ),
      'a warning names the output that is not batched',
    );
  });
});

describe('bounded queue', () => {
  it('answers 503 with Retry-After when the queue is full, and serves again once it drains', async () => {
    const url = `${server.url}/v2/models/detector/infer`;
    const shape = [1, 3, 640, 640];
    const request = encodeRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape, data: ramp(shape, 0) }] }, 'binary');
    // One runs, one waits (max_queue_size 1); the others arrive while the first still runs.
    const answers = await Promise.all(Array.from({ length: 6 }, () => postInference(url, request)));
    const rejected = answers.filter((a) => a.status === 503);
    assert.ok(rejected.length >= 1, `statuses: ${answers.map((a) => a.status).join(', ')}`);
    assert.ok(answers.every((a) => a.status === 200 || a.status === 503));
    for (const answer of rejected) {
      assert.equal(answer.headers.get('retry-after'), '1');
      assert.equal(
        answer.error,
        'model detector:1 is overloaded: 1 requests are queued (max_queue_size 1); retry later',
      );
    }
    const again = await postInference(url, request);
    assert.equal(again.status, 200, again.error);
    assert.deepEqual(again.response!.outputs[0].shape, [1, 1, 640, 640]);
  });
});

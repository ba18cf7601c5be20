/**
 * Request bodies and batch tensors live in memory the process uses again (src/runtime/buffer-pool.ts):
 * a body once its request settled, a batch's tensor once the worker sent it back. Reused too early,
 * one request would compute on another's numbers. Rounds of concurrent requests, each with data of
 * its own (binary with JSON headers of different lengths, so bodies sit at different paddings, and
 * some JSON), through a batching model on the real server: every answer is exactly its own input
 * doubled, while the pool hands buffers out again, and refused requests in between change nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeRequest, postInference } from '../../src/bench/wire.js';
import { bufferPool } from '../../src/runtime/buffer-pool.js';
import type { RunningServer } from '../../src/server/start.js';
import { buildModel, writeRepositoryModel } from '../helpers/onnx-builder.js';
import { startTestServer } from '../helpers/server.js';

/** 8,192 floats: a 32 KiB body, from the pool (and batches of up to 16 of them). */
const WIDTH = 8192;

let repository: string;
let server: RunningServer;

before(async () => {
  repository = await mkdtemp(path.join(tmpdir(), 'onnx-serve-pooled-'));
  await writeRepositoryModel(
    repository,
    'double',
    buildModel(
      [{ name: 'x', datatype: 'FP32', dims: ['batch', WIDTH] }],
      [{ name: 'y', datatype: 'FP32', dims: ['batch', WIDTH] }],
      [{ op: 'Add', inputs: ['x', 'x'], outputs: ['y'] }],
    ),
    // A short delay, so that concurrent requests meet in batches of several.
    'instances: 1\nmax_batch_size: 16\ndynamic_batching: { max_queue_delay_ms: 2 }\nwarmup: { runs: 1 }\n',
  );
  server = await startTestServer({ modelRepository: repository });
});

after(async () => {
  await server?.close();
  await rm(repository, { recursive: true, force: true });
});

/** Numbers no other request carries: exact in float32, and so is their double. */
function dataOf(seed: number, items: number): Float32Array {
  const data = new Float32Array(items * WIDTH);
  for (let i = 0; i < data.length; i++) data[i] = seed * 65536 + (i % 65536) + 0.5;
  return data;
}

describe('pooled request bodies and batch tensors', () => {
  it('never give one request another request’s numbers, over rounds of concurrent requests', async () => {
    const url = `${server.url}/v2/models/double/infer`;
    const reusedBefore = bufferPool.reused;
    let seed = 1;
    for (let round = 0; round < 8; round++) {
      const requests = Array.from({ length: 20 }, (_, index) => {
        const items = index % 7 === 0 ? 2 : 1;
        const data = dataOf(seed++, items);
        // Ids of different lengths: the binary data after the JSON header starts at odd and even offsets.
        const id = 'r'.repeat(1 + ((round + index) % 9));
        const encoding = index % 5 === 4 ? 'json' : 'binary';
        return {
          data,
          items,
          request: encodeRequest(
            { id, inputs: [{ name: 'x', datatype: 'FP32', shape: [items, WIDTH], data }] },
            encoding,
          ),
        };
      });
      // A request refused after its body was read (wrong width): its body goes back to the pool too.
      const refused = encodeRequest(
        { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH / 2], data: dataOf(0, 1).subarray(0, WIDTH / 2) }] },
        'binary',
      );
      const [answers, refusal] = await Promise.all([
        Promise.all(requests.map(({ request }) => postInference(url, request))),
        postInference(url, refused),
      ]);
      assert.equal(refusal.status, 400);
      answers.forEach((answer, index) => {
        assert.equal(answer.status, 200, answer.error);
        const { data, items } = requests[index];
        const y = answer.response!.outputs[0];
        assert.deepEqual(y.shape, [items, WIDTH]);
        for (let i = 0; i < data.length; i++) {
          if (y.data[i] !== data[i] * 2) {
            assert.fail(
              `round ${round}, request ${index}: element ${i} is ${String(y.data[i])}, expected ${data[i] * 2}`,
            );
          }
        }
      });
    }
    // The rounds ran on memory handed out again, not on fresh allocations only.
    assert.ok(bufferPool.reused > reusedBefore, `pool reused ${bufferPool.reused - reusedBefore} buffers`);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateModelConfig } from '../../src/config/model-config.js';
import type { NamedTensor } from '../../src/protocol/datatypes.js';
import { resolveBatchingPolicy, type BatchingPolicy } from '../../src/scheduler/batching-policy.js';
import { nextBatch, type Queued } from '../../src/scheduler/dynamic-batcher.js';
import { batchingRefusal } from '../../src/scheduler/model-queue.js';
import { batchKey, concatAlongBatch, splitAlongBatch } from '../../src/scheduler/tensor-batch.js';

const policy = (overrides: Partial<BatchingPolicy> = {}): BatchingPolicy => ({
  maxBatchSize: 8,
  maxQueueDelayMs: 0,
  preferredBatchSizes: [],
  maxQueueSize: 10,
  ...overrides,
});
const queued = (key: string | undefined, items = 1, enqueuedAt = 0): Queued => ({ key, items, enqueuedAt });

describe('batching policy from config.yaml', () => {
  it('defaults to batches of up to 8, no delay, a queue of 512', () => {
    assert.deepEqual(resolveBatchingPolicy({}), policy({ maxQueueSize: 512 }));
  });
  it('reads the delay in microseconds or milliseconds and sorts preferred sizes', () => {
    const config = {
      max_batch_size: 16,
      dynamic_batching: { max_queue_delay_microseconds: 1500, preferred_batch_size: [8, 4], max_queue_size: 3 },
    };
    assert.deepEqual(
      resolveBatchingPolicy(config),
      policy({ maxBatchSize: 16, maxQueueDelayMs: 1.5, preferredBatchSizes: [4, 8], maxQueueSize: 3 }),
    );
    assert.equal(resolveBatchingPolicy({ dynamic_batching: { max_queue_delay_ms: 2 } }).maxQueueDelayMs, 2);
  });
  it('rejects both delay keys at once, preferred sizes above the maximum and unknown keys, naming them', () => {
    assert.throws(
      () =>
        validateModelConfig(
          {
            max_batch_size: 4,
            dynamic_batching: { max_queue_delay_ms: 1, max_queue_delay_microseconds: 5, preferred_batch_size: [2, 8] },
          },
          'c.yaml',
        ),
      {
        message:
          'c.yaml: dynamic_batching sets both max_queue_delay_microseconds and max_queue_delay_ms; set one; dynamic_batching.preferred_batch_size has 8, above max_batch_size 4',
      },
    );
    assert.throws(() => validateModelConfig({ dynamic_batching: { max_queue: 1 } }, 'c.yaml'), {
      message:
        'c.yaml: unknown key "dynamic_batching.max_queue" (allowed: max_queue_delay_microseconds, max_queue_delay_ms, preferred_batch_size, max_queue_size)',
    });
    assert.throws(() => validateModelConfig({ dynamic_batching: { max_queue_size: 0 } }, 'c.yaml'), {
      message: 'c.yaml: dynamic_batching.max_queue_size must be >= 1',
    });
  });
});

describe('nextBatch', () => {
  it('joins requests with the head’s key up to max_batch_size items, in queue order', () => {
    const queue = [queued('a', 3), queued('b'), queued('a', 4), queued('a', 2), queued('a', 1)];
    assert.deepEqual(nextBatch(queue, policy(), 0), { run: [0, 2, 4] });
  });
  it('runs a request alone without batching, without a key, or when it fills a batch itself', () => {
    assert.deepEqual(nextBatch([queued('a'), queued('a')], policy({ maxBatchSize: 0 }), 0), { run: [0] });
    assert.deepEqual(nextBatch([queued(undefined), queued(undefined)], policy(), 0), { run: [0] });
    assert.deepEqual(nextBatch([queued('a', 12), queued('a')], policy(), 0), { run: [0] });
  });
  it('waits out max_queue_delay from the oldest request unless the batch is full or preferred', () => {
    const delayed = policy({ maxQueueDelayMs: 5, preferredBatchSizes: [2] });
    assert.deepEqual(nextBatch([queued('a', 1, 10)], delayed, 12), { waitUntil: 15 });
    assert.deepEqual(nextBatch([queued('a', 1, 10)], delayed, 15), { run: [0] });
    assert.deepEqual(nextBatch([queued('a', 1, 10), queued('a', 1, 11)], delayed, 12), { run: [0, 1] });
    assert.deepEqual(nextBatch([queued('a', 5, 10), queued('a', 3, 11)], delayed, 12), { run: [0, 1] });
  });
});

describe('tensor batches', () => {
  const tensor = (
    name: string,
    shape: number[],
    data: NamedTensor['data'],
    datatype: NamedTensor['datatype'] = 'INT32',
  ): NamedTensor => ({ name, datatype, shape, data });

  it('keys on names, datatypes, inner dimensions and wanted outputs', () => {
    const a = batchKey([tensor('x', [1, 2], new Int32Array(2))], undefined);
    assert.equal(batchKey([tensor('x', [3, 2], new Int32Array(6))], undefined), a);
    assert.notEqual(batchKey([tensor('x', [1, 3], new Int32Array(3))], undefined), a);
    assert.notEqual(batchKey([tensor('x', [1, 2], new Int32Array(2), 'UINT32')], undefined), a);
    assert.notEqual(batchKey([tensor('x', [1, 2], new Int32Array(2))], ['y']), a);
    assert.equal(batchKey([tensor('x', [], new Int32Array(1))], undefined), undefined);
    assert.equal(
      batchKey([tensor('x', [1], new Int32Array(1)), tensor('z', [2], new Int32Array(2))], undefined),
      undefined,
    );
  });

  it('concatenates along dimension 0 and splits back, numbers and strings', () => {
    const batch = concatAlongBatch([
      [tensor('x', [1, 2], new Int32Array([1, 2])), tensor('s', [1], ['a'], 'BYTES')],
      [tensor('s', [2], ['b', 'c'], 'BYTES'), tensor('x', [2, 2], new Int32Array([3, 4, 5, 6]))],
    ]);
    assert.deepEqual(batch, [
      tensor('x', [3, 2], new Int32Array([1, 2, 3, 4, 5, 6])),
      tensor('s', [3], ['a', 'b', 'c'], 'BYTES'),
    ]);
    assert.deepEqual(splitAlongBatch(batch, [1, 2]), [
      [tensor('x', [1, 2], new Int32Array([1, 2])), tensor('s', [1], ['a'], 'BYTES')],
      [tensor('x', [2, 2], new Int32Array([3, 4, 5, 6])), tensor('s', [2], ['b', 'c'], 'BYTES')],
    ]);
  });

  it('refuses to split an output whose first dimension is not the batch', () => {
    assert.throws(() => splitAlongBatch([tensor('y', [2, 3], new Int32Array(6))], [1, 2]), {
      message: 'output y has shape [2, 3] for a batch of 3: its first dimension is not the batch',
    });
  });

  it('refuses batching at load for a fixed or missing first dimension', () => {
    const spec = (name: string, dims: Array<number | string>) => ({
      name,
      datatype: 'FP32' as const,
      ortType: 'float32',
      dims,
    });
    assert.equal(batchingRefusal({ inputs: [spec('x', ['n', 3])], outputs: [spec('y', ['m'])] }), undefined);
    assert.equal(
      batchingRefusal({ inputs: [spec('x', ['n', 3])], outputs: [spec('y', [1, 'm'])] }),
      'output y has a fixed first dimension 1, not a batch',
    );
    assert.equal(
      batchingRefusal({ inputs: [spec('x', [])], outputs: [] }),
      'input x is a scalar, with no batch dimension',
    );
  });
});

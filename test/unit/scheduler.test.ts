import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateModelConfig } from '../../src/config/model-config.js';
import type { NamedTensor } from '../../src/protocol/datatypes.js';
import { resolveBatchingPolicy, type BatchingPolicy } from '../../src/scheduler/batching-policy.js';
import { nextBatch, type Queued } from '../../src/scheduler/dynamic-batcher.js';
import { pino } from 'pino';
import { ServeError } from '../../src/protocol/errors.js';
import type { RunResult } from '../../src/runtime/worker-pool.js';
import { batchingRefusal, effectiveTimeout, ModelQueue } from '../../src/scheduler/model-queue.js';
import { batchKey, concatAlongBatch, splitAlongBatch } from '../../src/scheduler/tensor-batch.js';
import { within } from '../helpers/wait.js';

const policy = (overrides: Partial<BatchingPolicy> = {}): BatchingPolicy => ({
  maxBatchSize: 8,
  maxQueueDelayMs: 0,
  preferredBatchSizes: [],
  maxQueueSize: 10,
  defaultTimeoutMicroseconds: 0,
  allowTimeoutOverride: true,
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
        'c.yaml: unknown key "dynamic_batching.max_queue" (allowed: max_queue_delay_microseconds, max_queue_delay_ms, preferred_batch_size, max_queue_size, default_timeout_microseconds, allow_timeout_override)',
    });
    assert.throws(() => validateModelConfig({ dynamic_batching: { max_queue_size: 0 } }, 'c.yaml'), {
      message: 'c.yaml: dynamic_batching.max_queue_size must be >= 1',
    });
  });
});

describe('deadlines (Triton ModelQueuePolicy)', () => {
  it('reads default_timeout_microseconds and allow_timeout_override, defaulting to none and true', () => {
    const config = { dynamic_batching: { default_timeout_microseconds: 5000, allow_timeout_override: false } };
    assert.deepEqual(
      resolveBatchingPolicy(config),
      policy({ maxQueueSize: 512, defaultTimeoutMicroseconds: 5000, allowTimeoutOverride: false }),
    );
    assert.throws(() => validateModelConfig({ dynamic_batching: { default_timeout_microseconds: -1 } }, 'c.yaml'), {
      message: 'c.yaml: dynamic_batching.default_timeout_microseconds must be >= 0',
    });
  });
  it('lets a request shorten the default, never lengthen it, and only when override is allowed', () => {
    const withDefault = policy({ defaultTimeoutMicroseconds: 5000 });
    const modelDefault = { microseconds: 5000, source: 'model default' };
    assert.deepEqual(effectiveTimeout(withDefault, undefined), modelDefault);
    assert.deepEqual(effectiveTimeout(withDefault, 0), modelDefault);
    assert.deepEqual(effectiveTimeout(withDefault, 2000), { microseconds: 2000, source: 'request' });
    assert.deepEqual(effectiveTimeout(withDefault, 9000), modelDefault);
    assert.deepEqual(effectiveTimeout({ ...withDefault, allowTimeoutOverride: false }, 2000), modelDefault);
    assert.equal(effectiveTimeout(policy(), undefined), undefined);
    assert.deepEqual(effectiveTimeout(policy(), 9000), { microseconds: 9000, source: 'request' });
    assert.equal(effectiveTimeout(policy({ allowTimeoutOverride: false }), 9000), undefined);
  });
});

/** A runner that holds every batch until release() and records the batch sizes it was given. */
function heldRunner() {
  const batches: number[] = [];
  const waiting: Array<() => void> = [];
  return {
    batches,
    release: () => waiting.splice(0).forEach((resume) => resume()),
    run: (inputs: NamedTensor[]): Promise<RunResult> => {
      batches.push(inputs[0].shape[0]);
      return new Promise((resolve) => waiting.push(() => resolve({ outputs: inputs, computeMs: 1, queueMs: 0 })));
    },
  };
}

function queueOver(runner: ReturnType<typeof heldRunner>, overrides: Partial<BatchingPolicy> = {}) {
  return new ModelQueue({
    label: 'm:1',
    runner,
    instances: 1,
    policy: policy(overrides),
    signature: {
      inputs: [{ name: 'x', datatype: 'FP32', ortType: 'float32', dims: ['batch', 2] }],
      outputs: [{ name: 'x', datatype: 'FP32', ortType: 'float32', dims: ['batch', 2] }],
    } as never,
    batchingRequested: true,
    log: pino({ level: 'silent' }),
  });
}

const row = (): NamedTensor[] => [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array(2) }];
const settle = (promise: Promise<unknown>) =>
  promise.then(
    () => 'ok',
    (error: ServeError) => `${error.status} ${error.message}`,
  );

describe('ModelQueue deadlines and cancellation', () => {
  it('drops a queued request at its deadline with 504, and the next batch does not carry it', async () => {
    const runner = heldRunner();
    const queue = queueOver(runner);
    const first = settle(queue.run(row()));
    const late = settle(queue.run(row(), undefined, { timeout: { microseconds: 1000, source: 'request' } }));
    const patient = settle(queue.run(row()));
    assert.match(
      await late,
      /^504 request to model m:1 timed out after waiting \d+(\.\d+)? ms in the queue: its deadline was 1000 µs \(parameters\.timeout\); it was not run$/,
    );
    assert.equal(queue.waiting, 1);
    runner.release();
    assert.equal(await first, 'ok');
    await new Promise((resolve) => setImmediate(resolve));
    runner.release();
    assert.equal(await patient, 'ok');
    assert.deepEqual(runner.batches, [1, 1], 'the first ran alone, then only the patient request ran');
  });

  it('takes an aborted request out of the queue unrun, and refuses one aborted before it was queued', async () => {
    const runner = heldRunner();
    const queue = queueOver(runner);
    const first = settle(queue.run(row()));
    const controller = new AbortController();
    const gone = settle(queue.run(row(), undefined, { signal: controller.signal }));
    const stays = settle(queue.run(row()));
    controller.abort();
    assert.match(
      await gone,
      /^499 request to model m:1 was cancelled by the client after waiting \d+(\.\d+)? ms in the queue; it was not run$/,
    );
    assert.equal(
      await settle(queue.run(row(), undefined, { signal: controller.signal })),
      '499 request to model m:1 was cancelled by the client after waiting 0 ms in the queue; it was not run',
    );
    runner.release();
    assert.equal(await first, 'ok');
    await new Promise((resolve) => setImmediate(resolve));
    runner.release();
    assert.equal(await stays, 'ok');
    assert.deepEqual(runner.batches, [1, 1]);
    await queue.drain();
  });

  it('watches only requests that wait: one dispatched at once arms no listener, one that waited lets go of its', async () => {
    /** A cancellation handle that counts the listeners held on it. */
    const countingSignal = () => {
      const listeners = new Set<() => void>();
      return {
        listeners,
        aborted: false,
        addEventListener: (_type: 'abort', listener: () => void) => void listeners.add(listener),
        removeEventListener: (_type: 'abort', listener: () => void) => void listeners.delete(listener),
      };
    };
    const runner = heldRunner();
    const queue = queueOver(runner);
    const atOnce = countingSignal();
    const first = settle(queue.run(row(), undefined, { signal: atOnce }));
    assert.equal(atOnce.listeners.size, 0, 'dispatched at once: nothing to watch');
    const waits = countingSignal();
    const second = settle(queue.run(row(), undefined, { signal: waits }));
    assert.equal(waits.listeners.size, 1, 'waiting: watched for its client going away');
    runner.release();
    assert.equal(await first, 'ok');
    assert.equal(waits.listeners.size, 0, 'dispatched after waiting: the listener is gone');
    await new Promise((resolve) => setImmediate(resolve));
    runner.release();
    assert.equal(await second, 'ok');
    await queue.drain();
  });

  it('tells a full queue before anything is decoded', async () => {
    const runner = heldRunner();
    const queue = queueOver(runner);
    const pending = Array.from({ length: 12 }, () => settle(queue.run(row())));
    assert.equal(
      queue.overload()?.message,
      'model m:1 is overloaded: 10 requests are queued (max_queue_size 10); retry later',
    );
    queue.close();
    runner.release();
    const answers = await Promise.all(pending);
    assert.deepEqual(answers.slice(0, 1), ['ok']);
    assert.equal(answers[11], '503 model m:1 is overloaded: 10 requests are queued (max_queue_size 10); retry later');
  });
});

describe('ModelQueue when a batch cannot be split', () => {
  /** Holds every run until release(); its outputs always have one row, so a batch of several cannot be split. */
  function unsplittableRunner() {
    const runner = heldRunner();
    return {
      ...runner,
      run: async (inputs: NamedTensor[]): Promise<RunResult> => {
        const result = await runner.run(inputs);
        return { ...result, outputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array(2) }] };
      },
    };
  }

  it('puts its requests back watched for their deadline and client, within the queue bound', async () => {
    const runner = unsplittableRunner();
    const queue = queueOver(runner, { maxQueueSize: 3 });
    const alone = settle(queue.run(row()));
    const client = new AbortController();
    const [first, goesAway, hasDeadline] = [
      settle(queue.run(row())),
      settle(queue.run(row(), undefined, { signal: client.signal })),
      settle(queue.run(row(), undefined, { timeout: { microseconds: 200_000, source: 'request' } })),
    ];
    runner.release();
    assert.equal(await alone, 'ok');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(runner.batches, [1, 3], 'the three waiting requests ran as one batch');
    const arrivedMeanwhile = Array.from({ length: 3 }, () => settle(queue.run(row())));

    runner.release(); // the batch of three comes back with one row: batching turns off, the three queue again
    const full = '503 model m:1 is overloaded: 3 requests are queued (max_queue_size 3); retry later';
    assert.deepEqual(await Promise.all(arrivedMeanwhile), [full, full, full]);
    assert.equal(queue.maxBatchSize, 0);
    // `first` runs alone now; the other two wait behind it, watched as before.
    client.abort();
    assert.match(await within('the cancelled request to leave the queue', goesAway, 5_000), /^499 .*it was not run$/);
    assert.match(
      await within('the requeued request to reach its deadline', hasDeadline, 5_000),
      /^504 request to model m:1 timed out after waiting .*\(parameters\.timeout\); it was not run$/,
    );
    runner.release();
    assert.equal(await first, 'ok');
    await queue.drain();
    assert.deepEqual(runner.batches, [1, 3, 1], 'neither the cancelled nor the expired request ran again');
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

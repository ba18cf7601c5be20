import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InferenceFinished } from '../../src/observability/inference-events.js';
import { InferenceLog } from '../../src/observability/inference-log.js';
import { capturingLogger } from '../helpers/log-capture.js';
import { waitUntil } from '../helpers/wait.js';

const model = { name: 'm', version: 2 };
const slow = (requestId: string): InferenceFinished => ({
  model,
  requestId,
  ok: true,
  totalMs: 200,
  queueMs: 30,
  computeMs: 170,
  items: 1,
  batchSize: 4,
  started: true,
});
const failed = (reason: InferenceFinished['reason']): InferenceFinished => ({
  model,
  requestId: 'r',
  ok: false,
  reason,
  error: 'inputs[0].shape[1] must be 3',
  totalMs: 1,
  items: 1,
  batchSize: 1,
  started: false,
});

describe('inference log', () => {
  it('writes one warning per slow inference with its fields, nothing for a fast one', () => {
    const { log, lines } = capturingLogger();
    const inferenceLog = new InferenceLog(log);
    inferenceLog.finished({ ...slow('fast'), totalMs: 150 }, 150);
    inferenceLog.finished(slow('req-1'), 150);
    inferenceLog.close();
    assert.equal(lines.length, 1);
    const {
      level,
      msg,
      model: name,
      version,
      requestId,
      durationMs,
      queueMs,
      computeMs,
      batchSize,
      thresholdMs,
    } = lines[0];
    assert.deepEqual(
      { level, msg, name, version, requestId, durationMs, queueMs, computeMs, batchSize, thresholdMs },
      {
        level: 40,
        msg: 'slow inference on m:2: 200 ms, over the 150 ms alert threshold',
        name: 'm',
        version: 2,
        requestId: 'req-1',
        durationMs: 200,
        queueMs: 30,
        computeMs: 170,
        batchSize: 4,
        thresholdMs: 150,
      },
    );
  });

  it('writes failures as warnings, internal ones as errors', () => {
    const { log, lines } = capturingLogger();
    const inferenceLog = new InferenceLog(log);
    inferenceLog.finished(failed('invalid'), 150);
    inferenceLog.finished(failed('internal'), 150);
    inferenceLog.close();
    assert.deepEqual(
      lines.map((l) => [l.level, l.reason, l.msg]),
      [
        [40, 'invalid', 'inference failed (invalid) on m:2: inputs[0].shape[1] must be 3'],
        [50, 'internal', 'inference failed (internal) on m:2: inputs[0].shape[1] must be 3'],
      ],
    );
  });

  it('limits a burst and says how many lines it suppressed when the interval ends', async () => {
    const { log, lines } = capturingLogger();
    const inferenceLog = new InferenceLog(log, { linesPerInterval: 3, intervalMs: 50 });
    for (let i = 0; i < 10; i++) inferenceLog.finished(slow(`burst-${i}`), 150);
    for (let i = 0; i < 4; i++) inferenceLog.finished(failed('invalid'), 150);
    assert.deepEqual(
      lines.map((l) => l.requestId),
      ['burst-0', 'burst-1', 'burst-2', 'r', 'r', 'r'],
    );
    // The interval ends on a timer, so the summary comes even when the burst is over.
    await waitUntil('the two suppression summaries', () => lines.length >= 8, { timeoutMs: 5_000 });
    const summaries = lines.slice(6).map(({ kind, suppressed, logged, msg }) => ({ kind, suppressed, logged, msg }));
    assert.deepEqual(summaries, [
      {
        kind: 'slow inference',
        suppressed: 7,
        logged: 3,
        msg: '7 more slow inference line(s) suppressed (at most 3 per 0.05 s)',
      },
      {
        kind: 'failed inference',
        suppressed: 1,
        logged: 3,
        msg: '1 more failed inference line(s) suppressed (at most 3 per 0.05 s)',
      },
    ]);
    // A new interval writes lines again.
    inferenceLog.finished(slow('after'), 150);
    inferenceLog.close();
    assert.equal(lines.at(-1)!.requestId, 'after');
    assert.equal(lines.length, 9);
  });
});

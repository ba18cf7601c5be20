/**
 * Outputs reduced in the worker (src/runtime/output-reductions.ts): the best class and its value per
 * row, as the CTC decoder reads them, from the full tensor a session returns.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NamedTensor } from '../../src/protocol/datatypes.js';
import {
  bestAlongLastAxis,
  parseReducedOutputName,
  reducedOutputName,
  sessionOutputsFor,
  withReductions,
} from '../../src/runtime/output-reductions.js';

function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

/** Rows of softmax values over `classes`, each with one clear winner somewhere, the blank (0) most often. */
function softmaxRows(rows: number, classes: number, random: () => number): Float32Array {
  const data = new Float32Array(rows * classes);
  for (let row = 0; row < rows; row++) {
    const winner = random() < 0.6 ? 0 : Math.floor(random() * classes);
    let sum = 0;
    for (let k = 0; k < classes; k++) {
      const value = Math.exp((k === winner ? 8 : 0) + random());
      data[row * classes + k] = value;
      sum += value;
    }
    for (let k = 0; k < classes; k++) data[row * classes + k] /= sum;
  }
  return data;
}

describe('output reductions', () => {
  it('name a reduction of an output, and nothing else', () => {
    assert.equal(reducedOutputName('softmax_11.tmp_0', 'argmax', true), 'softmax_11.tmp_0#argmax@softmax');
    assert.deepEqual(parseReducedOutputName('softmax_11.tmp_0#argmax@softmax'), {
      output: 'softmax_11.tmp_0',
      take: 'argmax',
      distribution: true,
    });
    assert.deepEqual(parseReducedOutputName('logits#max'), { output: 'logits', take: 'max', distribution: false });
    for (const plain of ['logits', 'logits#', '#max', 'logits#sum', 'logits#max@']) {
      assert.equal(parseReducedOutputName(plain), undefined, plain);
    }
  });

  it('find the largest value of each row and its first index, with or without the distribution shortcut', () => {
    const random = seeded(3);
    const classes = 700;
    const data = softmaxRows(60, classes, random);
    const full = bestAlongLastAxis(data, [2, 30, classes], false);
    const early = bestAlongLastAxis(data, [2, 30, classes], true);
    assert.deepEqual(early, full);
    for (let row = 0; row < 60; row++) {
      const values = Array.from(data.subarray(row * classes, (row + 1) * classes));
      const max = Math.max(...values);
      assert.equal(full.indices[row], values.indexOf(max));
      assert.equal(full.maxima[row], max);
    }
    // Logits (negative values, no distribution): the first of equal maxima.
    const logits = Float32Array.of(-3, -1, -1, -2, -5, -4, -4, -9);
    assert.deepEqual(bestAlongLastAxis(logits, [2, 4], false), {
      indices: Int32Array.of(1, 1),
      maxima: Float32Array.of(-1, -4),
    });
  });

  it('answer the requested names from a run, each full output reduced once and the plain ones untouched', () => {
    const scores: NamedTensor = {
      name: 'scores',
      datatype: 'FP32',
      shape: [2, 3, 4],
      data: Float32Array.of(
        0.1,
        0.7,
        0.1,
        0.1,
        0.9,
        0.05,
        0.03,
        0.02,
        0.2,
        0.2,
        0.5,
        0.1,
        0,
        0,
        0,
        1,
        0.4,
        0.3,
        0.2,
        0.1,
        0.25,
        0.25,
        0.25,
        0.25,
      ),
    };
    const other: NamedTensor = { name: 'other', datatype: 'INT64', shape: [1], data: BigInt64Array.of(7n) };
    const requested = ['scores#max', 'other', 'scores#argmax'];
    assert.deepEqual(sessionOutputsFor(requested, ['scores', 'other']), ['scores', 'other']);
    const answered = withReductions(
      requested,
      new Map([
        ['scores', scores],
        ['other', other],
      ]),
    );
    assert.deepEqual(answered, [
      { name: 'scores#max', datatype: 'FP32', shape: [2, 3], data: Float32Array.of(0.7, 0.9, 0.5, 1, 0.4, 0.25) },
      other,
      { name: 'scores#argmax', datatype: 'INT32', shape: [2, 3], data: Int32Array.of(1, 0, 2, 3, 0, 0) },
    ]);
    assert.throws(
      () => withReductions(['other#argmax'], new Map([['other', other]])),
      /only an FP32 output with a last axis can be reduced, other is INT64/,
    );
  });
});

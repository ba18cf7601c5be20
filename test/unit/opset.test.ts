/**
 * Raising a model's opset (src/quantize/opset.ts) must leave what it computes unchanged: a small
 * opset-9 graph with every operator the raise to 14 rewrites (Clip's bounds, Squeeze's, Unsqueeze's
 * and ReduceSum's axes, Slice's attributes, and a Softmax over more than its last axis, whose meaning
 * changed in opset 13) runs in onnxruntime-node before and after, on the same input.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import {
  cloneModelProto,
  defaultOpset,
  encodeModelProto,
  makeNode,
  ONNX_FLOAT,
  type ModelProtoMessage,
  type NodeProtoMessage,
} from '../../src/onnx/model-proto.js';
import { raiseToOpset14 } from '../../src/quantize/opset.js';

const ints = (node: NodeProtoMessage, name: string, values: number[]) => {
  node.attribute.push({ name, type: 7, ints: values });
  return node;
};

function opset9Model(extra: NodeProtoMessage[] = []): ModelProtoMessage {
  const clip = makeNode('Clip', ['x'], ['clipped'], 'clip', { floats: { min: -0.5, max: 0.8 } });
  // Opset 9's Softmax with axis 1 on a 2×3×4 tensor normalises over 12 values per row; opset 13's
  // over the 3 of axis 1 alone.
  const softmax = makeNode('Softmax', ['clipped'], ['soft'], 'softmax', { ints: { axis: 1 } });
  const unsqueeze = ints(makeNode('Unsqueeze', ['soft'], ['unsqueezed'], 'unsqueeze'), 'axes', [0]);
  const squeeze = ints(makeNode('Squeeze', ['unsqueezed'], ['squeezed'], 'squeeze'), 'axes', [0]);
  const slice = makeNode('Slice', ['squeezed'], ['sliced'], 'slice');
  ints(ints(ints(slice, 'starts', [1]), 'ends', [3]), 'axes', [2]);
  const sum = ints(makeNode('ReduceSum', ['x'], ['summed'], 'sum', { ints: { keepdims: 0 } }), 'axes', [1]);
  const tensor = (name: string, dims?: number[]) => ({
    name,
    type: {
      tensorType: { elemType: ONNX_FLOAT, ...(dims ? { shape: { dim: dims.map((d) => ({ dimValue: d })) } } : {}) },
    },
  });
  return {
    irVersion: 4,
    opsetImport: [{ domain: '', version: 9 }],
    metadataProps: [],
    graph: {
      name: 'opset9',
      node: [clip, softmax, unsqueeze, squeeze, slice, sum, ...extra],
      initializer: [],
      input: [tensor('x', [2, 3, 4])],
      output: [tensor('sliced'), tensor('summed'), ...extra.map((node) => tensor(node.output[0]))],
      valueInfo: [],
    },
  };
}

async function run(model: ModelProtoMessage, x: Float32Array): Promise<Record<string, number[]>> {
  const session = await ort.InferenceSession.create(encodeModelProto(model));
  try {
    const results = await session.run({ x: new ort.Tensor('float32', x, [2, 3, 4]) });
    return Object.fromEntries(Object.entries(results).map(([name, t]) => [name, [...(t.data as Float32Array)]]));
  } finally {
    await session.release();
  }
}

describe('raiseToOpset14', () => {
  it('rewrites what changed meaning since opset 9, and the model computes the same', async () => {
    const original = opset9Model();
    const raised = cloneModelProto(original);
    assert.equal(raiseToOpset14(raised), undefined);
    assert.equal(defaultOpset(raised), 14);
    const x = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i * 1.7) * 2);
    const want = await run(original, x);
    const got = await run(raised, x);
    assert.deepEqual(Object.keys(got).sort(), ['sliced', 'summed']);
    for (const name of ['sliced', 'summed']) {
      assert.equal(got[name].length, want[name].length, name);
      for (let i = 0; i < want[name].length; i++) assert.ok(Math.abs(got[name][i] - want[name][i]) < 1e-6, name);
    }
    // The Softmax really was over 12 values per row: each row of the slice sums to less than 1.
    assert.ok(want.sliced.slice(0, 6).reduce((a, b) => a + b, 0) < 0.9);
  });

  it('leaves a model alone, and says why, when it holds an operator it cannot vouch for', () => {
    const model = opset9Model([makeNode('LRN', ['x'], ['normalized'], 'lrn', { ints: { size: 3 } })]);
    const before = encodeModelProto(model);
    assert.match(raiseToOpset14(model) ?? '', /LRN \(node lrn\) is not known to compute the same at opset 14/);
    assert.deepEqual(encodeModelProto(model), before);
    // Dropout's ratio attribute is no longer allowed from opset 12.
    const dropout = opset9Model([makeNode('Dropout', ['x'], ['dropped'], 'dropout', { floats: { ratio: 0.1 } })]);
    assert.match(raiseToOpset14(dropout) ?? '', /Dropout \(node dropout\) is not known to compute the same/);
    assert.equal(defaultOpset(dropout), 9);
  });
});

/**
 * The rewrites before quantization (src/quantize/simplify.ts) on a small graph shaped like PP-LCNet's
 * layers as paddle2onnx writes them: Conv → scale → shift → hard-swish (Add, Clip, Mul, Div) →
 * scale → shift → next Conv, with the next Conv unpadded (1×1) and padded (depthwise 3×3). The
 * rewritten graph must compute what the original computes (both run in onnxruntime-node) with most
 * elementwise passes gone, and must leave alone what it cannot fold.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import {
  cloneModelProto,
  defaultOpset,
  encodeModelProto,
  makeNode,
  makeTensor,
  ONNX_FLOAT,
  type ModelProtoMessage,
  type NodeProtoMessage,
  type TensorProtoMessage,
} from '../../src/onnx/model-proto.js';
import { simplifyGraph } from '../../src/quantize/simplify.js';

const C = 8;

function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648 - 0.5;
  };
}

function layerModel(options: { lastConvOutputAlsoRead?: boolean } = {}): ModelProtoMessage {
  const random = seeded(7);
  const initializer: TensorProtoMessage[] = [];
  const weights = (name: string, dims: number[]) => {
    const count = dims.reduce((a, b) => a * b, 1);
    initializer.push(
      makeTensor(
        name,
        ONNX_FLOAT,
        dims,
        Float32Array.from({ length: count }, () => random()),
      ),
    );
    return name;
  };
  const scalar = (name: string, value: number) => {
    initializer.push(makeTensor(name, ONNX_FLOAT, [1], Float32Array.of(value)));
    return name;
  };
  const nodes: NodeProtoMessage[] = [];
  const conv = (name: string, input: string, dims: number[], pads: number, group: number, output: string) => {
    const node = makeNode(
      'Conv',
      [input, weights(`${name}_w`, dims), weights(`${name}_b`, [dims[0]])],
      [output],
      name,
      {
        ints: { group },
      },
    );
    node.attribute.push(
      { name: 'pads', type: 7, ints: [pads, pads, pads, pads] },
      { name: 'kernel_shape', type: 7, ints: dims.slice(2) },
    );
    nodes.push(node);
  };
  // Scalars first or second, as exporters write either.
  const affine = (label: string, input: string, scale: number, shift: number) => {
    nodes.push(makeNode('Mul', [scalar(`${label}_s`, scale), input], [`${label}_scaled`], `${label}_mul`));
    nodes.push(makeNode('Add', [`${label}_scaled`, scalar(`${label}_t`, shift)], [`${label}_out`], `${label}_add`));
    return `${label}_out`;
  };
  const hardSwish = (label: string, input: string) => {
    nodes.push(makeNode('Add', [input, scalar(`${label}_three`, 3)], [`${label}_plus3`], `${label}_add3`));
    nodes.push(
      makeNode(
        'Clip',
        [`${label}_plus3`, scalar(`${label}_zero`, 0), scalar(`${label}_six`, 6)],
        [`${label}_clip`],
        `${label}_clip`,
      ),
    );
    nodes.push(makeNode('Mul', [input, `${label}_clip`], [`${label}_times`], `${label}_times`));
    nodes.push(makeNode('Div', [`${label}_times`, scalar(`${label}_by6`, 6)], [`${label}_out`], `${label}_div`));
    return `${label}_out`;
  };
  conv('conv_a', 'x', [C, 3, 3, 3], 1, 1, 'a');
  let t = hardSwish('hs_a', affine('lab_a1', 'a', 1.7, 0.3));
  t = affine('lab_a2', t, 0.4, -0.2);
  conv('conv_b', t, [C, C, 1, 1], 0, 1, 'b');
  t = hardSwish('hs_b', affine('lab_b1', 'b', 1.3, 0.1));
  t = affine('lab_b2', t, 0.5, 0.25);
  conv('conv_c', t, [C, 1, 3, 3], 1, C, 'c');
  // A shift after the last Conv, whose output is also a graph output when asked: then it must stay.
  nodes.push(makeNode('Add', ['c', scalar('tail_shift', 0.5)], ['y'], 'tail_add'));
  const outputs = [{ name: 'y' }];
  if (options.lastConvOutputAlsoRead) outputs.push({ name: 'c' });
  // Clip's min and max inputs must be scalars: rank-0 tensors.
  for (const tensor of initializer) if (/_(zero|six)$/.test(tensor.name)) tensor.dims = [];
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    metadataProps: [],
    graph: {
      name: 'lcnet-like',
      node: nodes,
      initializer,
      input: [
        {
          name: 'x',
          type: { tensorType: { elemType: ONNX_FLOAT, shape: { dim: [1, 3, 9, 11].map((d) => ({ dimValue: d })) } } },
        },
      ],
      output: outputs.map(({ name }) => ({ name, type: { tensorType: { elemType: ONNX_FLOAT } } })),
      valueInfo: [],
    },
  };
}

async function run(model: ModelProtoMessage, x: Float32Array): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(encodeModelProto(model));
  try {
    const results = await session.run({ x: new ort.Tensor('float32', x, [1, 3, 9, 11]) });
    return Object.fromEntries(Object.entries(results).map(([name, tensor]) => [name, tensor.data as Float32Array]));
  } finally {
    await session.release();
  }
}

const ops = (model: ModelProtoMessage) => model.graph.node.map((node) => node.opType);
const count = (list: string[], op: string) => list.filter((item) => item === op).length;

describe('simplifyGraph', () => {
  it('folds scales and shifts into the convolutions and hard-swish into HardSigmoid, computing the same', async () => {
    const original = layerModel();
    const simplified = cloneModelProto(original);
    const report = simplifyGraph(simplified);
    assert.deepEqual(report, { hardSwish: 2, foldedIntoConv: 7 });
    const after = ops(simplified);
    // Left: three Conv, two HardSwish (the model moved from opset 13 to 14 for them), and the shifts
    // before conv_b and conv_c (their scales went into the weights). 7 = a1 ×2 and b1 ×2 after a
    // Conv, the scales of a2 and b2, and the shift after the last Conv (its output feeds nothing else).
    assert.deepEqual(
      { Conv: count(after, 'Conv'), HardSwish: count(after, 'HardSwish'), Mul: count(after, 'Mul') },
      { Conv: 3, HardSwish: 2, Mul: 0 },
    );
    assert.equal(defaultOpset(simplified), 14);
    assert.equal(count(after, 'Add'), 2, after.join(' '));
    assert.equal(count(after, 'Clip') + count(after, 'Div'), 0);
    // Node names of the convolutions stay, so quantization.exclude still names them.
    assert.deepEqual(
      simplified.graph.node.filter((node) => node.opType === 'Conv').map((node) => node.name),
      ['conv_a', 'conv_b', 'conv_c'],
    );

    const random = seeded(11);
    const x = Float32Array.from({ length: 3 * 9 * 11 }, () => 4 * random());
    const want = (await run(original, x)).y;
    const got = (await run(simplified, x)).y;
    assert.equal(got.length, want.length);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
    assert.ok(worst < 1e-5, `largest difference ${worst}`);
  });

  it('writes hard-swish as HardSigmoid × x where the model cannot move to opset 14, computing the same', async () => {
    const original = layerModel();
    // LRN is not on the list of operators known to mean the same at opset 14.
    original.graph.node.push(makeNode('LRN', ['y'], ['y_lrn'], 'lrn', { ints: { size: 3 } }));
    original.graph.output.push({ name: 'y_lrn', type: { tensorType: { elemType: ONNX_FLOAT } } });
    const simplified = cloneModelProto(original);
    const report = simplifyGraph(simplified);
    assert.equal(report.hardSwish, 2);
    assert.match(report.keptOpset ?? '', /LRN \(node lrn\) is not known to compute the same at opset 14/);
    assert.equal(defaultOpset(simplified), 13);
    const after = ops(simplified);
    assert.deepEqual(
      { HardSwish: count(after, 'HardSwish'), HardSigmoid: count(after, 'HardSigmoid'), Mul: count(after, 'Mul') },
      { HardSwish: 0, HardSigmoid: 2, Mul: 2 },
    );
    const random = seeded(3);
    const x = Float32Array.from({ length: 3 * 9 * 11 }, () => 4 * random());
    const want = (await run(original, x)).y_lrn;
    const got = (await run(simplified, x)).y_lrn;
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4 * (1 + Math.abs(want[i])));
  });

  it('leaves a shift after a Conv whose output something else reads', async () => {
    const simplified = layerModel({ lastConvOutputAlsoRead: true });
    const report = simplifyGraph(simplified);
    assert.equal(report.foldedIntoConv, 6);
    assert.ok(simplified.graph.node.some((node) => node.name === 'tail_add'));
    const random = seeded(5);
    const x = Float32Array.from({ length: 3 * 9 * 11 }, () => random());
    const want = await run(layerModel({ lastConvOutputAlsoRead: true }), x);
    const got = await run(simplified, x);
    for (const name of ['y', 'c']) {
      for (let i = 0; i < want[name].length; i++) assert.ok(Math.abs(got[name][i] - want[name][i]) < 1e-4, name);
    }
  });

  it('changes nothing in a graph without the patterns', () => {
    const model = layerModel();
    // Clip(0, 5) is not hard-swish's Clip(0, 6), and the scalars are no longer constants.
    for (const tensor of model.graph.initializer) {
      if (tensor.name.endsWith('_six')) tensor.rawData = new Uint8Array(Float32Array.of(5).buffer);
    }
    model.graph.initializer = model.graph.initializer.filter((tensor) => !/_(s|t)$|tail_shift/.test(tensor.name));
    model.graph.input.push(
      ...[
        'lab_a1_s',
        'lab_a1_t',
        'lab_a2_s',
        'lab_a2_t',
        'lab_b1_s',
        'lab_b1_t',
        'lab_b2_s',
        'lab_b2_t',
        'tail_shift',
      ].map((name) => ({ name, type: { tensorType: { elemType: ONNX_FLOAT } } })),
    );
    const before = ops(model);
    assert.deepEqual(simplifyGraph(model), { hardSwish: 0, foldedIntoConv: 0 });
    assert.deepEqual(ops(model), before);
  });
});

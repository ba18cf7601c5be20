/**
 * Raising a model's default opset where a rewrite needs a newer operator, without changing what it
 * computes: operators whose meaning changed in between are rewritten, or the model is left alone.
 *
 * - To 10: ONNX Runtime fuses QDQ groups into QLinearConv and QLinearMatMul, which exist from
 *   opset 10; in a model importing opset 9 (paddle2onnx's recognizer, for one) the fused graph is
 *   invalid. Between opset 9 and 10 only a few operators changed meaning: Slice is rewritten (its
 *   starts, ends and axes move from attributes to inputs); a model with TopK, the other one, is refused.
 * - To 14, for HardSwish (simplify.ts): Clip's bounds, Squeeze's, Unsqueeze's and ReduceSum's axes
 *   and Split's sizes move to inputs; Softmax, LogSoftmax and Hardmax (before 13: over everything
 *   from `axis` on) become Flatten → the operator over the last axis → Reshape to the input's
 *   shape. Any operator not known to mean the same at 14 keeps the model at its opset.
 */
import {
  defaultOpset,
  intAttribute,
  intsAttribute,
  makeNode,
  makeTensor,
  ONNX_FLOAT,
  ONNX_INT64,
  type ModelProtoMessage,
  type NodeProtoMessage,
  type TensorProtoMessage,
} from '../onnx/model-proto.js';

const CHANGED_IN_10 = new Set(['TopK', 'Dropout']);

/** Raises a model's default opset to 10 where it is 9; leaves 10 and later alone. */
export function upgradeToOpset10(model: ModelProtoMessage): void {
  const version = defaultOpset(model);
  if (version >= 10) return;
  if (version < 9) {
    throw new Error(
      `the model imports opset ${version}; quantize needs opset 9 or later (re-export it with a newer opset)`,
    );
  }
  const added: TensorProtoMessage[] = [];
  for (const node of model.graph.node) {
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    if (CHANGED_IN_10.has(node.opType)) {
      throw new Error(
        `the model imports opset 9 and has a ${node.opType} node (${node.name}), which changed in opset 10; re-export it with opset 13 or later`,
      );
    }
    if (node.opType !== 'Slice') continue;
    const label = node.name || node.output[0];
    const inputs = [node.input[0]];
    for (const key of ['starts', 'ends', 'axes']) {
      const values = intsAttribute(node, key);
      if (values === undefined) continue;
      const name = `${label}_${key}`;
      added.push(makeTensor(name, ONNX_INT64, [values.length], BigInt64Array.from(values, BigInt)));
      inputs.push(name);
    }
    node.input = inputs;
    node.attribute = [];
  }
  model.graph.initializer.push(...added);
  for (const opset of model.opsetImport) {
    if (opset.domain === '' || opset.domain === 'ai.onnx') opset.version = 10;
  }
}

/**
 * Operators that compute the same at every opset from 10 to 14 (as far as they exist at 10). Not
 * Dropout (its ratio became an input in 12) nor TopK (k became an input in 10): models with them
 * keep their opset.
 */
const SAME_FROM_10_TO_14 = new Set([
  'Abs',
  'Add',
  'And',
  'ArgMax',
  'ArgMin',
  'AveragePool',
  'BatchNormalization',
  'Cast',
  'Ceil',
  'Concat',
  'Constant',
  'ConstantOfShape',
  'Conv',
  'ConvTranspose',
  'DequantizeLinear',
  'Div',
  'Elu',
  'Equal',
  'Erf',
  'Exp',
  'Expand',
  'Flatten',
  'Floor',
  'Gather',
  'Gemm',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'Greater',
  'HardSigmoid',
  'Identity',
  'InstanceNormalization',
  'LeakyRelu',
  'Less',
  'Log',
  'MatMul',
  'Max',
  'MaxPool',
  'Mean',
  'Min',
  'Mul',
  'Neg',
  'Not',
  'Or',
  'Pow',
  'PRelu',
  'QuantizeLinear',
  'Reciprocal',
  'ReduceL2',
  'ReduceMax',
  'ReduceMean',
  'ReduceMin',
  'ReduceProd',
  'Relu',
  'Reshape',
  'Selu',
  'Shape',
  'Sigmoid',
  'Sign',
  'Slice',
  'Softplus',
  'Sqrt',
  'Sub',
  'Sum',
  'Tanh',
  'Tile',
  'Transpose',
  'Where',
]);
/** Changed meaning before 13: normalised over every axis from `axis` on (default 1). */
const COERCED_TO_2D = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);
/** An attribute that became an input: at which opset, and the input's type. */
const ATTRIBUTE_TO_INPUT: Record<string, { attribute: string; from: number; type: 'int64' | 'float' }[]> = {
  Squeeze: [{ attribute: 'axes', from: 13, type: 'int64' }],
  Unsqueeze: [{ attribute: 'axes', from: 13, type: 'int64' }],
  ReduceSum: [{ attribute: 'axes', from: 13, type: 'int64' }],
  Split: [{ attribute: 'split', from: 13, type: 'int64' }],
  Clip: [
    { attribute: 'min', from: 11, type: 'float' },
    { attribute: 'max', from: 11, type: 'float' },
  ],
};
const GRAPH_ATTRIBUTES = new Set([5, 10]);

/**
 * Raises the model's default opset to 14 where it is older, rewriting what changed meaning; answers
 * why not (and leaves the model untouched) when it holds an operator this cannot vouch for.
 */
export function raiseToOpset14(model: ModelProtoMessage): string | undefined {
  const version = defaultOpset(model);
  if (version >= 14) return undefined;
  if (version < 9) return `it imports opset ${version}`;
  const inDefaultDomain = (node: NodeProtoMessage) => node.domain === '' || node.domain === 'ai.onnx';
  for (const node of model.graph.node) {
    if (node.attribute.some((attribute) => GRAPH_ATTRIBUTES.has(attribute.type ?? 0))) {
      return `${node.opType} node ${node.name} holds a subgraph`;
    }
    if (!inDefaultDomain(node)) continue;
    const { opType } = node;
    if (opType === 'Resize') {
      const mode = node.attribute.find((a) => a.name === 'coordinate_transformation_mode')?.s;
      if (version < 11) return 'Resize changed in opset 11';
      if (mode !== undefined && Buffer.from(mode).toString() === 'tf_half_pixel_for_nn') {
        return 'Resize with tf_half_pixel_for_nn has no equivalent in opset 13';
      }
      continue;
    }
    if (opType === 'Pad' && version >= 11) continue;
    if (!SAME_FROM_10_TO_14.has(opType) && !COERCED_TO_2D.has(opType) && !(opType in ATTRIBUTE_TO_INPUT)) {
      return `${opType} (node ${node.name || node.output[0]}) is not known to compute the same at opset 14`;
    }
  }
  if (version < 10) upgradeToOpset10(model);
  const graph = model.graph;
  const nodes: NodeProtoMessage[] = [];
  for (const node of graph.node) {
    if (!inDefaultDomain(node)) {
      nodes.push(node);
      continue;
    }
    const label = node.name || node.output[0];
    for (const { attribute, from, type } of ATTRIBUTE_TO_INPUT[node.opType] ?? []) {
      if (version >= from) continue;
      const found = node.attribute.find((a) => a.name === attribute);
      if (found === undefined) continue;
      const values = intsAttribute(node, attribute) ?? [];
      node.attribute = node.attribute.filter((a) => a !== found);
      // Clip's min comes before max, each optional ('' skips one); the others have one such input.
      const slot = node.opType === 'Clip' ? (attribute === 'min' ? 1 : 2) : 1;
      while (node.input.length < slot) node.input.push('');
      const name = `${label}_${attribute}`;
      graph.initializer.push(
        type === 'int64'
          ? makeTensor(name, ONNX_INT64, [values.length], BigInt64Array.from(values, BigInt))
          : makeTensor(name, ONNX_FLOAT, [], Float32Array.of(found.f ?? 0)),
      );
      node.input[slot] = name;
    }
    if (COERCED_TO_2D.has(node.opType) && version < 13) {
      const axis = intAttribute(node, 'axis', 1);
      const [input] = node.input;
      const [output] = node.output;
      nodes.push(
        makeNode('Flatten', [input], [`${label}_2d`], `${label}_flatten`, { ints: { axis } }),
        makeNode(node.opType, [`${label}_2d`], [`${label}_2d_out`], label, { ints: { axis: -1 } }),
        makeNode('Shape', [input], [`${label}_shape`], `${label}_shape`),
        makeNode('Reshape', [`${label}_2d_out`, `${label}_shape`], [output], `${label}_reshape`),
      );
      continue;
    }
    nodes.push(node);
  }
  graph.node = nodes;
  for (const opset of model.opsetImport) {
    if (opset.domain === '' || opset.domain === 'ai.onnx') opset.version = 14;
  }
  return undefined;
}

/**
 * ONNX Runtime fuses QDQ groups into QLinearConv and QLinearMatMul, which exist from opset 10; in a
 * model importing opset 9 (paddle2onnx's recognizer, for one) the fused graph is invalid. Between
 * opset 9 and 10 only a few operators changed meaning: Slice is rewritten (its starts, ends and axes
 * move from attributes to inputs); a model with TopK, the other one, is refused.
 */
import {
  defaultOpset,
  intsAttribute,
  makeTensor,
  ONNX_INT64,
  type ModelProtoMessage,
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

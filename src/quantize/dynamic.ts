/**
 * Dynamic quantization: MatMul and Gemm with constant weights get int8 weights, and their float
 * input is quantized at run time (DynamicQuantizeLinear → MatMulInteger → Cast → Mul by the scale
 * product), the form onnxruntime.quantization.quantize_dynamic writes and ONNX Runtime fuses into
 * one DynamicQuantizeMatMul kernel. No calibration: each run measures its own input range.
 */
import {
  constantTensors,
  defaultOpset,
  floatAttribute,
  floatValuesOf,
  intAttribute,
  makeNode,
  makeTensor,
  ONNX_FLOAT,
  ONNX_INT8,
  removeUnusedConstants,
  shapeOfTensor,
  type ModelProtoMessage,
  type NodeProtoMessage,
  type TensorProtoMessage,
} from '../onnx/model-proto.js';
import { roundHalfEven } from './qdq.js';

export interface DynamicQuantizeOptions {
  perChannel: boolean;
  reduceRange: boolean;
  exclude: string[];
}

export interface DynamicPlan {
  nodes: { name: string; opType: string; input: string[]; output: string[] }[];
  excluded: string[];
}

const CAST_TO = 'to';

/** Rewrites the model in place: every MatMul/Gemm with a constant 2-D float weight, not excluded. */
export function planDynamic(model: ModelProtoMessage, options: DynamicQuantizeOptions): DynamicPlan {
  if (defaultOpset(model) < 11) {
    throw new Error(
      `dynamic quantization needs opset 11 or later (DynamicQuantizeLinear); the model imports opset ${defaultOpset(model)}: use static quantization`,
    );
  }
  const graph = model.graph;
  const exclude = new Set(options.exclude);
  const constants = constantTensors(graph);
  const weightOf = (node: NodeProtoMessage): TensorProtoMessage | undefined => {
    const weight = constants.get(node.input[1]);
    if (weight === undefined || weight.dataType !== ONNX_FLOAT || weight.dims.length !== 2) return undefined;
    if (constants.has(node.input[0])) return undefined;
    if (node.opType === 'MatMul') return weight;
    if (node.opType !== 'Gemm') return undefined;
    const plain =
      intAttribute(node, 'transA', 0) === 0 &&
      (floatAttribute(node, 'alpha') ?? 1) === 1 &&
      (floatAttribute(node, 'beta') ?? 1) === 1;
    return plain ? weight : undefined;
  };

  const nodes: DynamicPlan['nodes'] = [];
  const excluded: string[] = [];
  const rewritten: NodeProtoMessage[] = [];
  const added: TensorProtoMessage[] = [];
  for (const node of graph.node) {
    const weight = node.domain === '' || node.domain === 'ai.onnx' ? weightOf(node) : undefined;
    if (weight === undefined) {
      rewritten.push(node);
      continue;
    }
    const label = node.name || node.output[0];
    if (exclude.has(node.name) || exclude.has(node.opType)) {
      excluded.push(label);
      rewritten.push(node);
      continue;
    }
    nodes.push({ name: node.name, opType: node.opType, input: [...node.input], output: [...node.output] });
    const transposed = node.opType === 'Gemm' && intAttribute(node, 'transB', 0) === 1;
    const { tensors, names } = quantizeColumns(weight, transposed, label, options);
    added.push(...tensors);
    const input = node.input[0];
    const output = node.output[0];
    const base = `${label}_dynamic`;
    const product = node.opType === 'Gemm' && node.input[2] ? `${base}_product` : output;
    rewritten.push(
      makeNode(
        'DynamicQuantizeLinear',
        [input],
        [`${base}_input_quantized`, `${base}_input_scale`, `${base}_input_zero_point`],
        `${base}_DynamicQuantizeLinear`,
      ),
      makeNode(
        'MatMulInteger',
        [`${base}_input_quantized`, names.weight, `${base}_input_zero_point`, names.zeroPoint],
        [`${base}_int32`],
        `${base}_MatMulInteger`,
      ),
      makeNode('Cast', [`${base}_int32`], [`${base}_float`], `${base}_Cast`, { ints: { [CAST_TO]: ONNX_FLOAT } }),
      makeNode('Mul', [`${base}_input_scale`, names.scale], [`${base}_scale`], `${base}_ScaleProduct`),
      makeNode('Mul', [`${base}_float`, `${base}_scale`], [product], `${base}_Mul`),
    );
    if (product !== output) rewritten.push(makeNode('Add', [product, node.input[2]], [output], `${base}_Bias`));
  }
  graph.node = rewritten;
  graph.initializer.push(...added);
  removeUnusedConstants(graph);
  return { nodes, excluded };
}

/** The weight as int8 [K, N] (transposed first for Gemm with transB), one symmetric scale per column or per tensor. */
function quantizeColumns(
  weight: TensorProtoMessage,
  transposed: boolean,
  label: string,
  options: DynamicQuantizeOptions,
): { tensors: TensorProtoMessage[]; names: { weight: string; scale: string; zeroPoint: string } } {
  const values = floatValuesOf(weight)!;
  const [rows, columns] = shapeOfTensor(weight);
  const [k, n] = transposed ? [columns, rows] : [rows, columns];
  const at = (row: number, column: number) =>
    transposed ? values[column * columns + row] : values[row * columns + column];
  const limit = options.reduceRange ? 64 : 127;
  const scaleCount = options.perChannel ? n : 1;
  const absMax = new Float32Array(scaleCount);
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < n; c++) {
      const s = options.perChannel ? c : 0;
      absMax[s] = Math.max(absMax[s], Math.abs(at(r, c)));
    }
  }
  const scales = Float32Array.from(absMax, (m) => (m > 0 ? m / limit : 1));
  const quantized = new Int8Array(k * n);
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < n; c++) {
      const scale = scales[options.perChannel ? c : 0];
      quantized[r * n + c] = Math.max(-limit, Math.min(limit, roundHalfEven(at(r, c) / scale)));
    }
  }
  const base = `${weight.name}__${label}`;
  const names = { weight: `${base}_quantized`, scale: `${base}_scale`, zeroPoint: `${base}_zero_point` };
  const dims = options.perChannel ? [n] : [];
  return {
    tensors: [
      makeTensor(names.weight, ONNX_INT8, [k, n], quantized),
      makeTensor(names.scale, ONNX_FLOAT, dims, scales),
      makeTensor(names.zeroPoint, ONNX_INT8, dims, new Int8Array(scaleCount)),
    ],
    names,
  };
}

/**
 * Static quantization in QDQ form: QuantizeLinear/DequantizeLinear pairs around the float tensors
 * of Conv, MatMul and Gemm and of the ops ONNX Runtime runs in int8 between them (Add, Concat,
 * pooling), int8 weights with a DequantizeLinear each, int32 biases. The graph stays a float
 * graph that computes what int8 computes; ONNX Runtime's graph optimizer fuses each
 * DequantizeLinear → op → QuantizeLinear group into its integer kernel (QLinearConv, QGemm, …).
 *
 * Conventions follow onnxruntime.quantization's defaults: activations uint8 asymmetric over the
 * calibrated range widened to take in 0; weights int8 symmetric, per output channel for Conv and
 * Gemm; reduce-range (7-bit weights) for CPUs whose int8 product (AVX2 vpmaddubsw without VNNI)
 * can saturate; Relu and Clip(0, …) after a quantized op folded into its output range.
 */
import {
  clipBound,
  constantTensors,
  defaultOpset,
  floatAttribute,
  floatValuesOf,
  intAttribute,
  makeNode,
  makeTensor,
  ONNX_FLOAT,
  ONNX_INT32,
  ONNX_INT8,
  ONNX_UINT8,
  removeUnusedConstants,
  shapeOfTensor,
  type GraphProtoMessage,
  type ModelProtoMessage,
  type NodeProtoMessage,
  type TensorProtoMessage,
} from '../onnx/model-proto.js';
import type { Range } from './calibrate.js';

export interface StaticQuantizeOptions {
  /** One scale per output channel for Conv and Gemm weights (default true). */
  perChannel: boolean;
  /** 7-bit weights: what ONNX Runtime recommends on x86 CPUs without VNNI (default true). */
  reduceRange: boolean;
  /** Node names or op types left in float. */
  exclude: string[];
}

/** The graph after Relu folding, and what calibration has to measure for it. */
export interface QdqPlan {
  model: ModelProtoMessage;
  /** Nodes that get quantized inputs and outputs (Conv, MatMul, Gemm, Add, …). */
  nodes: NodeProtoMessage[];
  /** Activation tensors whose range calibration must measure (names as in the source model). */
  tensors: string[];
  /** Tensors that take their input's quantization (MaxPool, Reshape, …): output → input. */
  shared: Map<string, string>;
  /** Relu/Clip nodes folded into the op before them. */
  foldedActivations: string[];
  excluded: string[];
}

const WEIGHTED = new Set(['Conv', 'MatMul', 'Gemm']);
/** Ops with an int8 kernel (or QDQ fusion) of their own in ONNX Runtime: all float inputs and the output quantized. */
const OWN_RANGE = new Set(['Add', 'Concat', 'GlobalAveragePool', 'AveragePool']);
/** Ops that move int8 values unchanged: ONNX Runtime drops their Q/DQ when input and output share one quantization. */
const PASS_THROUGH = new Set(['MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze']);
const FOLDABLE_ACTIVATIONS = new Set(['Relu', 'Clip']);

const MS_DOMAIN = 'com.microsoft';

/** Folds activations and decides which nodes and tensors to quantize; the model is copied first by the caller. */
export function planStatic(
  model: ModelProtoMessage,
  options: StaticQuantizeOptions,
  nonFloat: ReadonlySet<string> = new Set(),
): QdqPlan {
  const graph = model.graph;
  const exclude = new Set(options.exclude);
  const isExcluded = (node: NodeProtoMessage) => exclude.has(node.name) || exclude.has(node.opType);
  const constants = constantTensors(graph);
  const isFloatConstant = (name: string) => constants.get(name)?.dataType === ONNX_FLOAT;
  const graphOutputs = new Set(graph.output.map((output) => output.name));

  const quantizable = (node: NodeProtoMessage): boolean => {
    if (node.domain !== '' && node.domain !== 'ai.onnx') return false;
    if (isExcluded(node)) return false;
    if (node.output.some((name) => nonFloat.has(name)) || node.input.some((name) => nonFloat.has(name))) return false;
    switch (node.opType) {
      case 'Conv':
        return !isFloatConstant(node.input[0]) && isFloatConstant(node.input[1]);
      case 'Gemm':
        return (
          !isFloatConstant(node.input[0]) &&
          isFloatConstant(node.input[1]) &&
          intAttribute(node, 'transA', 0) === 0 &&
          (floatAttribute(node, 'alpha') ?? 1) === 1
        );
      case 'MatMul':
        return !node.input.every(isFloatConstant);
      case 'Add':
        return node.input.length === 2 && !node.input.some((name) => constants.has(name));
      case 'Concat':
        return !node.input.some((name) => constants.has(name));
      default:
        return OWN_RANGE.has(node.opType);
    }
  };

  // Fold Relu / Clip(0, …) into a quantized producer: its output range starts at 0, so the uint8
  // quantization of the producer's output clamps exactly as the activation would.
  const consumers = countConsumers(graph);
  const producers = new Map<string, NodeProtoMessage>();
  for (const node of graph.node) for (const output of node.output) producers.set(output, node);
  const folded: string[] = [];
  const dropped = new Set<NodeProtoMessage>();
  for (const node of graph.node) {
    if (!FOLDABLE_ACTIVATIONS.has(node.opType) || isExcluded(node)) continue;
    if (node.opType === 'Clip' && clipBound(node, constants, 'min') !== 0) continue;
    const producer = producers.get(node.input[0]);
    if (producer === undefined || !quantizable(producer) || dropped.has(producer)) continue;
    if (!WEIGHTED.has(producer.opType) && producer.opType !== 'Add') continue;
    if (consumers.get(node.input[0]) !== 1 || graphOutputs.has(node.input[0])) continue;
    producer.output[0] = node.output[0];
    dropped.add(node);
    folded.push(node.name || node.output[0]);
  }
  graph.node = graph.node.filter((node) => !dropped.has(node));

  const nodes: NodeProtoMessage[] = [];
  const tensors = new Set<string>();
  const shared = new Map<string, string>();
  const excluded: string[] = [];
  for (const node of graph.node) {
    if (isExcluded(node)) {
      if (WEIGHTED.has(node.opType) || OWN_RANGE.has(node.opType)) excluded.push(node.name || node.output[0]);
      continue;
    }
    if (PASS_THROUGH.has(node.opType) && (node.domain === '' || node.domain === 'ai.onnx')) {
      const input = node.input[0];
      if (
        (tensors.has(input) || shared.has(input)) &&
        !graphOutputs.has(node.output[0]) &&
        !nonFloat.has(node.output[0])
      ) {
        shared.set(node.output[0], input);
      }
      continue;
    }
    if (!quantizable(node)) continue;
    nodes.push(node);
    for (const input of activationInputs(node, isFloatConstant)) if (!shared.has(input)) tensors.add(input);
    if (!graphOutputs.has(node.output[0])) tensors.add(node.output[0]);
  }
  return { model, nodes, tensors: [...tensors], shared, foldedActivations: folded, excluded };
}

/** Rewrites the planned graph in QDQ form with the calibrated ranges. */
export function applyStatic(plan: QdqPlan, ranges: Map<string, Range>, options: StaticQuantizeOptions): void {
  const { model } = plan;
  const graph = model.graph;
  const domain = defaultOpset(model) >= 13 ? '' : MS_DOMAIN;
  if (domain === MS_DOMAIN && !model.opsetImport.some((opset) => opset.domain === MS_DOMAIN)) {
    // Before opset 13 QuantizeLinear has no axis (per-channel weights): ONNX Runtime's own domain has it at any opset.
    model.opsetImport.push({ domain: MS_DOMAIN, version: 1 });
  }
  const constants = constantTensors(graph);
  const isFloatConstant = (name: string) => constants.get(name)?.dataType === ONNX_FLOAT;
  const graphInputs = new Set(graph.input.map((input) => input.name));

  const added: TensorProtoMessage[] = [];
  const leading: NodeProtoMessage[] = [];
  const after = new Map<string, NodeProtoMessage[]>();
  const renamed = new Map<string, string>();
  const activation = new Map<string, { scale: string; zeroPoint: string; scaleValue: number }>();

  const quantizeActivation = (tensor: string, paramsOf: string) => {
    if (renamed.has(tensor)) return;
    let params = activation.get(paramsOf);
    if (params === undefined) {
      const range = ranges.get(paramsOf);
      if (range === undefined) throw new Error(`no calibrated range for tensor ${paramsOf}`);
      const { scale, zeroPoint } = uint8Params(range);
      params = { scale: `${paramsOf}_scale`, zeroPoint: `${paramsOf}_zero_point`, scaleValue: scale };
      added.push(makeTensor(params.scale, ONNX_FLOAT, [], Float32Array.of(scale)));
      added.push(makeTensor(params.zeroPoint, ONNX_UINT8, [], Uint8Array.of(zeroPoint)));
      activation.set(paramsOf, params);
    }
    if (paramsOf !== tensor) activation.set(tensor, params);
    const quantized = `${tensor}_QuantizeLinear_Output`;
    const dequantized = `${tensor}_DequantizeLinear_Output`;
    const pair = [
      makeNode('QuantizeLinear', [tensor, params.scale, params.zeroPoint], [quantized], `${tensor}_QuantizeLinear`, {
        domain,
      }),
      makeNode(
        'DequantizeLinear',
        [quantized, params.scale, params.zeroPoint],
        [dequantized],
        `${tensor}_DequantizeLinear`,
        { domain },
      ),
    ];
    if (graphInputs.has(tensor) || constants.has(tensor)) leading.push(...pair);
    else after.set(tensor, [...(after.get(tensor) ?? []), ...pair]);
    renamed.set(tensor, dequantized);
  };

  // Activations in graph order, so that a pass-through output finds its input's parameters.
  const planned = new Set(plan.tensors);
  for (const node of graph.node) {
    for (const input of node.input) if (planned.has(input) && graphInputs.has(input)) quantizeActivation(input, input);
    for (const output of node.output) {
      if (planned.has(output)) quantizeActivation(output, output);
      const source = plan.shared.get(output);
      if (source !== undefined && activation.has(source)) quantizeActivation(output, source);
    }
  }

  const weightInputs = new Map<NodeProtoMessage, Map<number, string>>();
  for (const node of plan.nodes) {
    const replaced = new Map<number, string>();
    const weightIndices = WEIGHTED.has(node.opType)
      ? node.opType === 'MatMul'
        ? node.input.map((name, index) => (isFloatConstant(name) ? index : -1)).filter((index) => index >= 0)
        : [1]
      : [];
    for (const index of weightIndices) {
      const weight = constants.get(node.input[index])!;
      const axis = weightAxis(node, weight, options.perChannel);
      const { name, scales, nodes } = quantizeWeight(node, weight, axis, options.reduceRange, domain);
      added.push(...nodes.tensors);
      leading.push(nodes.dequantize);
      replaced.set(index, name);
      const biasIndex = node.opType === 'MatMul' ? -1 : 2;
      const bias = biasIndex > 0 ? node.input[biasIndex] : undefined;
      const inputParams = activation.get(node.input[0]);
      if (bias !== undefined && bias !== '' && isFloatConstant(bias) && inputParams !== undefined) {
        const quantizedBias = quantizeBias(node, constants.get(bias)!, scales, inputParams.scaleValue, axis, domain);
        if (quantizedBias !== undefined) {
          added.push(...quantizedBias.tensors);
          leading.push(quantizedBias.dequantize);
          replaced.set(biasIndex, quantizedBias.name);
        }
      }
    }
    weightInputs.set(node, replaced);
  }

  const rewritten: NodeProtoMessage[] = [...leading];
  for (const node of graph.node) {
    const replaced = weightInputs.get(node);
    node.input = node.input.map((name, index) => replaced?.get(index) ?? renamed.get(name) ?? name);
    rewritten.push(node);
    for (const output of node.output) rewritten.push(...(after.get(output) ?? []));
  }
  // A graph output read by a Q node keeps its float value; consumers of it read the DQ output.
  graph.node = rewritten;
  graph.initializer.push(...added);
  removeUnusedConstants(graph);
}

function activationInputs(node: NodeProtoMessage, isFloatConstant: (name: string) => boolean): string[] {
  switch (node.opType) {
    case 'Conv':
    case 'Gemm':
      return [node.input[0]];
    case 'MatMul':
      return node.input.filter((name) => !isFloatConstant(name));
    default:
      return node.input.filter((name) => name !== '');
  }
}

function countConsumers(graph: GraphProtoMessage): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of graph.node) for (const input of node.input) counts.set(input, (counts.get(input) ?? 0) + 1);
  return counts;
}

/** uint8 asymmetric over the range widened to take in 0 (so that 0 — padding, Relu — is exact). */
export function uint8Params(range: Range): { scale: number; zeroPoint: number } {
  const min = Math.min(0, range.min);
  const max = Math.max(0, range.max);
  if (!(max > min)) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((max - min) / 255);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-min / scale)));
  return { scale, zeroPoint };
}

/** The axis of one scale per output channel, or undefined for one scale per tensor. */
function weightAxis(node: NodeProtoMessage, weight: TensorProtoMessage, perChannel: boolean): number | undefined {
  if (!perChannel) return undefined;
  const rank = weight.dims.length;
  if (node.opType === 'Conv') return 0;
  if (node.opType === 'Gemm') return intAttribute(node, 'transB', 0) === 1 ? 0 : 1;
  // MatMul: ONNX Runtime's int8 MatMul kernels take one scale per column of a 2-D B only.
  return node.input[1] === weight.name && rank === 2 ? 1 : undefined;
}

interface WeightNodes {
  tensors: TensorProtoMessage[];
  dequantize: NodeProtoMessage;
}

function quantizeWeight(
  node: NodeProtoMessage,
  weight: TensorProtoMessage,
  axis: number | undefined,
  reduceRange: boolean,
  domain: string,
): { name: string; scales: Float32Array; nodes: WeightNodes } {
  const values = floatValuesOf(weight)!;
  const shape = shapeOfTensor(weight);
  // Symmetric int8: ±127, or ±64 with reduce-range (7 bits), as onnxruntime.quantization does.
  const limit = reduceRange ? 64 : 127;
  const channels = axis === undefined ? 1 : shape[axis];
  const inner = axis === undefined ? values.length : shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const absMax = new Float32Array(channels);
  for (let i = 0; i < values.length; i++) absMax[channelOf(i)] = Math.max(absMax[channelOf(i)], Math.abs(values[i]));
  const scales = Float32Array.from(absMax, (m) => (m > 0 ? m / limit : 1));
  const quantized = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    quantized[i] = Math.max(-limit, Math.min(limit, roundHalfEven(values[i] / scales[channelOf(i)])));
  }
  const { name, ...nodes } = dequantizedConstant(
    `${weight.name}__${node.name || node.output[0]}`,
    makeTensor('', ONNX_INT8, shape, quantized),
    scales,
    new Int8Array(channels),
    axis,
    domain,
  );
  return { name, scales, nodes };
}

/** int32 bias with scale input scale × weight scale and zero point 0, as the integer kernels expect. */
function quantizeBias(
  node: NodeProtoMessage,
  bias: TensorProtoMessage,
  weightScales: Float32Array,
  inputScale: number,
  axis: number | undefined,
  domain: string,
): (WeightNodes & { name: string }) | undefined {
  const values = floatValuesOf(bias)!;
  const channels = weightScales.length;
  if (bias.dims.length !== 1 || (channels > 1 && values.length !== channels)) return undefined;
  const scales = Float32Array.from({ length: values.length }, (_, c) =>
    Math.fround(inputScale * weightScales[channels > 1 ? c : 0]),
  );
  const quantized = Int32Array.from(values, (v, c) => roundHalfEven(v / scales[c]));
  const perChannel = axis !== undefined && channels > 1;
  return dequantizedConstant(
    `${bias.name}__${node.name || node.output[0]}`,
    makeTensor('', ONNX_INT32, [values.length], quantized),
    perChannel ? scales : scales.subarray(0, 1),
    new Int32Array(perChannel ? values.length : 1),
    perChannel ? 0 : undefined,
    domain,
  );
}

/** A quantized constant (`base`_quantized, _scale, _zero_point) and the DequantizeLinear that reads it. */
function dequantizedConstant(
  base: string,
  quantized: TensorProtoMessage,
  scales: Float32Array,
  zeroPoints: Int8Array | Int32Array,
  axis: number | undefined,
  domain: string,
): WeightNodes & { name: string } {
  const scaleDims = axis === undefined ? [] : [scales.length];
  const zeroPointType = zeroPoints instanceof Int8Array ? ONNX_INT8 : ONNX_INT32;
  const tensors = [
    { ...quantized, name: `${base}_quantized` },
    makeTensor(`${base}_scale`, ONNX_FLOAT, scaleDims, scales),
    makeTensor(`${base}_zero_point`, zeroPointType, scaleDims, zeroPoints),
  ];
  const name = `${base}_DequantizeLinear_Output`;
  const dequantize = makeNode(
    'DequantizeLinear',
    tensors.map((tensor) => tensor.name),
    [name],
    `${base}_DequantizeLinear`,
    { domain, ints: axis === undefined ? {} : { axis } },
  );
  return { name, tensors, dequantize };
}

/** numpy.rint: halves to the even neighbour. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * Rewrites done before quantization that leave what the graph computes unchanged (up to float
 * rounding) and take whole passes over activations away. paddle2onnx exports of PP-LCNet models
 * (PP-OCRv4's recognizer) spell each hard-swish as Add(3) → Clip(0, 6) → Mul → Div(6) and follow
 * each convolution and activation with a learnable scale and shift (Mul and Add by a scalar): eight
 * elementwise passes per layer, which ONNX Runtime runs one by one in float between the int8
 * convolutions (more time than the int8 convolutions themselves). After the rewrite a layer is the
 * convolution, carrying the scales and shifts in its weights and bias, then one HardSwish.
 *
 * - hard-swish: x · Clip(x + 3, 0, 6) / 6 becomes HardSwish(x), an operator from opset 14: the model
 *   is raised to it where that changes nothing it computes (opset.ts). Otherwise it becomes
 *   x · HardSigmoid(x; α = 1/6, β = 0.5): two passes, and in an int8 model the dequantized x read
 *   twice, which ONNX Runtime dequantizes twice (5 % of the int8 recognizer's time, bench/RESULTS.md).
 * - A Mul or Add by a scalar constant after a Conv goes into its weights and bias.
 * - Before a Conv, a Mul by a scalar then an Add of one: the scale goes into the weights,
 *   s · x + b becomes x + b / s (foldScaleBeforeConv says why the shift stays).
 */
import {
  clipBound,
  constantTensors,
  floatValuesOf,
  makeNode,
  makeTensor,
  ONNX_FLOAT,
  removeUnusedConstants,
  shapeOfTensor,
  type GraphProtoMessage,
  type ModelProtoMessage,
  type NodeProtoMessage,
  type TensorProtoMessage,
} from '../onnx/model-proto.js';
import { raiseToOpset14 } from './opset.js';

export interface SimplifyReport {
  /** Add → Clip → Mul → Div chains rewritten as HardSwish (or HardSigmoid → Mul, see keptOpset). */
  hardSwish: number;
  /** Mul and Add nodes whose constant went into a convolution's weights or bias. */
  foldedIntoConv: number;
  /** Why the model stayed at its opset, its hard-swish chains HardSigmoid → Mul rather than HardSwish. */
  keptOpset?: string;
}

/** Rewrites the model in place. */
export function simplifyGraph(model: ModelProtoMessage): SimplifyReport {
  const graph = model.graph;
  const chains = new GraphIndex(graph);
  const keptOpset = graph.node.some((node) => matchHardSwish(chains, node) !== undefined)
    ? raiseToOpset14(model)
    : undefined;
  const report: SimplifyReport = {
    hardSwish: rewriteEach(graph, (index, node) => rewriteHardSwish(graph, index, node, keptOpset === undefined)),
    foldedIntoConv: 0,
  };
  if (keptOpset !== undefined) report.keptOpset = keptOpset;
  report.foldedIntoConv += rewriteEach(graph, (index, node) => foldAfterConv(graph, index, node));
  report.foldedIntoConv += rewriteEach(graph, (index, node) => foldScaleBeforeConv(graph, index, node));
  if (report.hardSwish + report.foldedIntoConv > 0) removeUnusedConstants(graph);
  return report;
}

/** Who reads each tensor and who writes it, taken afresh after every rewrite. */
class GraphIndex {
  readonly constants: Map<string, TensorProtoMessage>;
  readonly producers = new Map<string, NodeProtoMessage>();
  private readonly consumers = new Map<string, NodeProtoMessage[]>();
  private readonly outputs: Set<string>;

  constructor(readonly graph: GraphProtoMessage) {
    this.constants = constantTensors(graph);
    this.outputs = new Set(graph.output.map((output) => output.name));
    for (const node of graph.node) {
      for (const output of node.output) this.producers.set(output, node);
      for (const input of node.input) {
        const list = this.consumers.get(input);
        if (list === undefined) this.consumers.set(input, [node]);
        else list.push(node);
      }
    }
  }

  /** The one node reading `tensor`, when nothing else (graph outputs included) reads it. */
  soleConsumer(tensor: string): NodeProtoMessage | undefined {
    const list = this.consumers.get(tensor);
    return list?.length === 1 && !this.outputs.has(tensor) ? list[0] : undefined;
  }

  /** The value of a one-element float constant. */
  scalar(tensor: string): number | undefined {
    const constant = this.constants.get(tensor);
    if (constant === undefined || constant.dataType !== ONNX_FLOAT) return undefined;
    const values = floatValuesOf(constant);
    return values?.length === 1 ? values[0] : undefined;
  }

  /** For a Mul or Add of one tensor and one scalar constant: the tensor and the scalar. */
  scalarOperation(node: NodeProtoMessage): { input: string; value: number } | undefined {
    if (!isDefaultDomain(node) || (node.opType !== 'Mul' && node.opType !== 'Add') || node.input.length !== 2) {
      return undefined;
    }
    const [a, b] = node.input;
    const aValue = this.scalar(a);
    const bValue = this.scalar(b);
    if (aValue !== undefined && bValue === undefined && !this.constants.has(b)) return { input: b, value: aValue };
    if (bValue !== undefined && aValue === undefined && !this.constants.has(a)) return { input: a, value: bValue };
    return undefined;
  }
}

function isDefaultDomain(node: NodeProtoMessage): boolean {
  return node.domain === '' || node.domain === 'ai.onnx';
}

/**
 * Applies `rewrite` at the first node where it applies, again and again (the index taken afresh after
 * each change), until it applies nowhere; answers how many times it applied.
 */
function rewriteEach(
  graph: GraphProtoMessage,
  rewrite: (index: GraphIndex, node: NodeProtoMessage) => boolean,
): number {
  let count = 0;
  for (;;) {
    const index = new GraphIndex(graph);
    if (!graph.node.some((node) => rewrite(index, node))) return count;
    count++;
  }
}

/** A hard-swish chain at `add` becomes HardSwish (`single`, at opset 14) or HardSigmoid → Mul. */
function rewriteHardSwish(
  graph: GraphProtoMessage,
  index: GraphIndex,
  add: NodeProtoMessage,
  single: boolean,
): boolean {
  const match = matchHardSwish(index, add);
  if (match === undefined) return false;
  const { x, nodes, output } = match;
  const label = nodes[nodes.length - 1].name || output;
  const gate = `${label}_hard_sigmoid`;
  const replacement = single
    ? [makeNode('HardSwish', [x], [output], `${label}_hard_swish`)]
    : [
        makeNode('HardSigmoid', [x], [gate], `${label}_hard_sigmoid`, { floats: { alpha: 1 / 6, beta: 0.5 } }),
        makeNode('Mul', [x, gate], [output], `${label}_hard_swish`),
      ];
  const at = graph.node.indexOf(nodes[nodes.length - 1]);
  graph.node.splice(at, 1, ...replacement);
  graph.node = graph.node.filter((node) => !nodes.includes(node));
  return true;
}

/** Add(x, 3) → Clip(0, 6) → Mul(x, ·) → Div(·, 6) or Mul(·, 1/6), each read only by the next. */
function matchHardSwish(
  index: GraphIndex,
  add: NodeProtoMessage,
): { x: string; nodes: NodeProtoMessage[]; output: string } | undefined {
  const shift = index.scalarOperation(add);
  if (add.opType !== 'Add' || shift === undefined || shift.value !== 3) return undefined;
  const x = shift.input;
  const clip = index.soleConsumer(add.output[0]);
  if (clip === undefined || clip.opType !== 'Clip' || !isDefaultDomain(clip) || clip.input[0] !== add.output[0]) {
    return undefined;
  }
  if (clipBound(clip, index.constants, 'min') !== 0 || clipBound(clip, index.constants, 'max') !== 6) return undefined;
  const product = index.soleConsumer(clip.output[0]);
  if (product === undefined || product.opType !== 'Mul' || !isDefaultDomain(product)) return undefined;
  const [a, b] = product.input;
  if (!((a === x && b === clip.output[0]) || (b === x && a === clip.output[0]))) return undefined;
  const divide = index.soleConsumer(product.output[0]);
  if (divide === undefined || !isDefaultDomain(divide) || divide.input[0] !== product.output[0]) return undefined;
  const by = index.scalar(divide.input[1]);
  const isSixth =
    (divide.opType === 'Div' && by === 6) ||
    (divide.opType === 'Mul' && by !== undefined && Math.abs(by - 1 / 6) < 1e-7);
  if (!isSixth) return undefined;
  return { x, nodes: [add, clip, product, divide], output: divide.output[0] };
}

/** A Conv with float constant weights (and bias, if any): what can take a folded scale or shift. */
function convWeights(
  index: GraphIndex,
  conv: NodeProtoMessage,
): { weights: Float64Array; bias: Float64Array; dims: number[] } | undefined {
  if (conv.opType !== 'Conv' || !isDefaultDomain(conv)) return undefined;
  const weight = index.constants.get(conv.input[1]);
  if (weight === undefined || weight.dataType !== ONNX_FLOAT) return undefined;
  const weights = floatValuesOf(weight);
  const dims = shapeOfTensor(weight);
  if (weights === undefined || dims.length < 3) return undefined;
  let bias = new Float64Array(dims[0]);
  if (conv.input.length > 2 && conv.input[2] !== '') {
    const tensor = index.constants.get(conv.input[2]);
    const values = tensor?.dataType === ONNX_FLOAT ? floatValuesOf(tensor) : undefined;
    if (values === undefined || values.length !== dims[0]) return undefined;
    bias = Float64Array.from(values);
  }
  return { weights: Float64Array.from(weights), bias, dims };
}

/** Gives the Conv new weight and bias initializers (its old ones may be read by other nodes). */
function setConvWeights(
  graph: GraphProtoMessage,
  conv: NodeProtoMessage,
  { weights, bias, dims }: { weights: Float64Array; bias: Float64Array; dims: number[] },
): void {
  const label = conv.name || conv.output[0];
  const names = [`${label}_folded_weight`, `${label}_folded_bias`];
  graph.initializer = graph.initializer.filter((tensor) => !names.includes(tensor.name));
  graph.initializer.push(
    makeTensor(names[0], ONNX_FLOAT, dims, Float32Array.from(weights)),
    makeTensor(names[1], ONNX_FLOAT, [dims[0]], Float32Array.from(bias)),
  );
  conv.input = [conv.input[0], names[0], names[1]];
}

/** Conv → Mul(s) or Add(b) (repeated, any number in a row): weights · s, bias · s + b. */
function foldAfterConv(graph: GraphProtoMessage, index: GraphIndex, conv: NodeProtoMessage): boolean {
  const next = index.soleConsumer(conv.output[0]);
  const operation = next === undefined ? undefined : index.scalarOperation(next);
  const folded = operation === undefined ? undefined : convWeights(index, conv);
  if (next === undefined || operation === undefined || folded === undefined) return false;
  if (next.opType === 'Mul') {
    folded.weights = folded.weights.map((w) => w * operation.value);
    folded.bias = folded.bias.map((b) => b * operation.value);
  } else {
    folded.bias = folded.bias.map((b) => b + operation.value);
  }
  setConvWeights(graph, conv, folded);
  conv.output = [next.output[0]];
  graph.node = graph.node.filter((node) => node !== next);
  return true;
}

/**
 * Mul(s) → Add(b) → Conv becomes Add(b / s) → Conv with the weights · s. The shift stays: before a
 * padded Conv it could not move (the zero padding is unchanged by a scale but not by a shift), and
 * before the others, moved into the bias, it changed what int8 made of the recognizer (a letter
 * added at the end of some lines: bench/recognizer-int8-lines.ts); the Conv's input is then the
 * scaled input divided by s, which quantizes as the original did.
 */
function foldScaleBeforeConv(graph: GraphProtoMessage, index: GraphIndex, conv: NodeProtoMessage): boolean {
  const shift = index.producers.get(conv.input[0]);
  const shifting = shift === undefined ? undefined : index.scalarOperation(shift);
  if (shift === undefined || shifting === undefined || shift.opType !== 'Add') return false;
  if (index.soleConsumer(shift.output[0]) !== conv) return false;
  const scale = index.producers.get(shifting.input);
  const scaling = scale === undefined ? undefined : index.scalarOperation(scale);
  if (scale === undefined || scaling === undefined || scale.opType !== 'Mul') return false;
  if (index.soleConsumer(scale.output[0]) !== shift || !(Math.abs(scaling.value) > 0)) return false;
  const unscaled = shifting.value / scaling.value;
  const folded = convWeights(index, conv);
  if (folded === undefined || !Number.isFinite(unscaled)) return false;
  folded.weights = folded.weights.map((w) => w * scaling.value);
  setConvWeights(graph, conv, folded);
  const label = shift.name || shift.output[0];
  const shiftName = `${label}_unscaled_shift`;
  graph.initializer = graph.initializer.filter((tensor) => tensor.name !== shiftName);
  graph.initializer.push(makeTensor(shiftName, ONNX_FLOAT, [1], Float32Array.of(unscaled)));
  shift.input = [scaling.input, shiftName];
  graph.node = graph.node.filter((node) => node !== scale);
  return true;
}

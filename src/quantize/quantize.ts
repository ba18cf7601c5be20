/**
 * `quantize`: a float ONNX model in, an int8 one out. Static (QDQ, calibrated on sample inputs) or
 * dynamic (int8 weights, activations quantized at run time). Either way the written model is loaded
 * in onnxruntime-node and run next to the float one, so the report says what the int8 model costs
 * in accuracy, per output and, for static quantization, per quantized node.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { cloneModelProto, readModelProto, writeModelProto, type ModelProtoMessage } from '../onnx/model-proto.js';
import type { NamedTensor } from '../protocol/datatypes.js';
import { withModelPool } from '../runtime/model-pool.js';
import { compareOutputs, type OutputAgreement } from '../verify/agreement.js';
import { findTestDataSets } from '../verify/test-data.js';
import { calibrate, nonFloatTensors, withExposedModel, type CalibrationMethod } from './calibrate.js';
import { planDynamic } from './dynamic.js';
import { upgradeToOpset10 } from './opset.js';
import { applyStatic, planStatic } from './qdq.js';
import { readSamples } from './samples.js';
import { simplifyGraph, type SimplifyReport } from './simplify.js';

export interface QuantizeOptions {
  mode: 'static' | 'dynamic';
  method: CalibrationMethod;
  percentile?: number;
  perChannel: boolean;
  reduceRange: boolean;
  exclude: string[];
  /** Sample inputs (folder or file); default: the test data sets next to the model. */
  calibration?: string;
  /** config.yaml whose preprocess turns calibration images into tensors. */
  config?: string;
  /** Most calibration samples used (default 100). */
  maxSamples: number;
  /** Samples for the per-node error report (default 4; 0 skips it). */
  reportSamples: number;
  /** Fold scalar scales and shifts into convolutions and hard-swish chains into HardSwish first (default true; simplify.ts). */
  simplify?: boolean;
}

export interface NodeError {
  node: string;
  op: string;
  tensor: string;
  /** ‖int8 − float‖ / ‖float‖ of the node's output, over the report samples. */
  relativeError: number;
  /** relativeError minus the largest relative error among its quantized inputs: what this node adds. */
  addedError: number;
}

export interface QuantizeReport {
  mode: 'static' | 'dynamic';
  before: { path: string; fileSize: number };
  after: { path: string; fileSize: number };
  sizeRatio: number;
  options: {
    method?: CalibrationMethod;
    percentile?: number;
    perChannel: boolean;
    reduceRange: boolean;
    exclude: string[];
  };
  calibration?: { samples: number; source: string; seconds: number };
  quantizedNodes: number;
  /** Quantized nodes by op type. */
  quantizedOps: Record<string, number>;
  foldedActivations: number;
  /** What the rewrites before quantization changed (zeros with simplify off). */
  simplified: SimplifyReport;
  excluded: string[];
  /** The int8 model against the float one, on the samples (calibration ones: see `verify` for held-out inputs). */
  outputs: OutputAgreement[];
  /** Static only: worst first. */
  nodeErrors: NodeError[];
  seconds: number;
}

export async function quantizeModel(
  modelPath: string,
  outputPath: string,
  options: QuantizeOptions,
): Promise<QuantizeReport> {
  const started = performance.now();
  const source = await readModelProto(modelPath);
  const known = new Set(source.graph.node.flatMap((node) => [node.name, node.opType]));
  const unknown = options.exclude.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new Error(`--exclude ${unknown.join(', ')}: no node of ${modelPath} has that name or op type`);
  }
  // Before anything reads the graph: calibration and the plan see the rewritten model. Node names
  // are kept (Conv and the nodes left), so `exclude` still names what it named.
  const simplified = options.simplify === false ? { hardSwish: 0, foldedIntoConv: 0 } : simplifyGraph(source);
  const signature = await withModelPool(modelPath, async (_pool, signature) => signature);
  // Dynamic quantization needs no samples; where the model has test data, they show what it costs.
  const hasTestData = (await findTestDataSets(path.dirname(path.resolve(modelPath)))).length > 0;
  let samples: NamedTensor[][] = [];
  let sampleSource = '';
  if (options.mode === 'static' || options.calibration !== undefined || hasTestData) {
    const set = await readSamples(options.calibration, modelPath, signature, options.config);
    samples = set.samples.slice(0, options.maxSamples);
    sampleSource = set.description;
  }

  let model = cloneModelProto(source);
  let quantizedNodes: { name: string; opType: string; output: string[]; input: string[] }[];
  let foldedActivations = 0;
  let excluded: string[] = [];
  let calibration: QuantizeReport['calibration'];
  let nodeTensors: Map<string, string> | undefined;
  if (options.mode === 'static') {
    upgradeToOpset10(model);
    let plan = planStatic(model, options);
    if (plan.nodes.length === 0) throw nothingToQuantize(modelPath, options);
    // Add, Concat and MatMul also compute shapes and indices; those tensors stay as they are.
    const nonFloat = await nonFloatTensors(source, plan.tensors, samples[0]);
    if (nonFloat.size > 0) {
      model = cloneModelProto(source);
      upgradeToOpset10(model);
      plan = planStatic(model, options, nonFloat);
    }
    const calibrationStart = performance.now();
    const ranges = await calibrate(source, plan.tensors, samples, {
      method: options.method,
      percentile: options.percentile,
    });
    calibration = {
      samples: samples.length,
      source: sampleSource,
      seconds: (performance.now() - calibrationStart) / 1000,
    };
    quantizedNodes = plan.nodes.map((node) => ({ ...node, input: [...node.input], output: [...node.output] }));
    applyStatic(plan, ranges, options);
    foldedActivations = plan.foldedActivations.length;
    excluded = plan.excluded;
    nodeTensors = new Map(quantizedNodes.map((node) => [node.output[0], node.name || node.output[0]]));
  } else {
    const plan = planDynamic(model, options);
    quantizedNodes = plan.nodes;
    excluded = plan.excluded;
  }
  if (quantizedNodes.length === 0) throw nothingToQuantize(modelPath, options);
  model.metadataProps.push({
    key: 'onnx_serve.quantize',
    value: JSON.stringify({
      mode: options.mode,
      method: options.mode === 'static' ? options.method : undefined,
      per_channel: options.perChannel,
      reduce_range: options.reduceRange,
      simplify: options.simplify !== false,
      calibration: sampleSource || undefined,
    }),
  });
  await mkdir(path.dirname(path.resolve(outputPath)), { recursive: true });
  await writeModelProto(outputPath, model);

  const comparison = samples.length > 0 ? samples : [];
  const outputs = comparison.length > 0 ? await compareOutputs(modelPath, outputPath, comparison) : [];
  const nodeErrors =
    options.mode === 'static' && options.reportSamples > 0 && nodeTensors !== undefined
      ? await measureNodeErrors(source, model, quantizedNodes, samples.slice(0, options.reportSamples))
      : [];

  const quantizedOps: Record<string, number> = {};
  for (const node of quantizedNodes) quantizedOps[node.opType] = (quantizedOps[node.opType] ?? 0) + 1;
  const before = { path: modelPath, fileSize: (await stat(modelPath)).size };
  const after = { path: outputPath, fileSize: (await stat(outputPath)).size };
  return {
    mode: options.mode,
    before,
    after,
    sizeRatio: after.fileSize / before.fileSize,
    options: {
      method: options.mode === 'static' ? options.method : undefined,
      percentile:
        options.mode === 'static' && options.method === 'percentile' ? (options.percentile ?? 99.999) : undefined,
      perChannel: options.perChannel,
      reduceRange: options.reduceRange,
      exclude: options.exclude,
    },
    calibration,
    quantizedNodes: quantizedNodes.length,
    quantizedOps,
    foldedActivations,
    simplified,
    excluded,
    outputs,
    nodeErrors,
    seconds: (performance.now() - started) / 1000,
  };
}

function nothingToQuantize(modelPath: string, options: QuantizeOptions): Error {
  const what =
    options.mode === 'static'
      ? 'Conv, MatMul or Gemm with constant weights, or Add, Concat, pooling on float tensors'
      : 'MatMul or Gemm with a constant 2-D float weight';
  return new Error(
    `${modelPath} has no node to quantize (${what}${options.exclude.length > 0 ? ', not excluded' : ''})`,
  );
}

/**
 * Each quantized node's output in the int8 model (after its DequantizeLinear: what the next layer
 * reads) against the same tensor in the float model, on the same samples; exposing the tensors
 * keeps ONNX Runtime from fusing, so this measures the QDQ simulation of the int8 kernels.
 */
async function measureNodeErrors(
  floatModel: ModelProtoMessage,
  quantized: ModelProtoMessage,
  nodes: { name: string; opType: string; input: string[]; output: string[] }[],
  samples: NamedTensor[][],
): Promise<NodeError[]> {
  const dequantizedOf = new Set(quantized.graph.node.map((node) => node.output[0]));
  const graphOutputs = new Set(quantized.graph.output.map((output) => output.name));
  const pairs = new Map<string, string>();
  for (const node of nodes) {
    for (const tensor of [node.output[0], ...node.input]) {
      const dequantized = `${tensor}_DequantizeLinear_Output`;
      if (dequantizedOf.has(dequantized)) pairs.set(tensor, dequantized);
      else if (graphOutputs.has(tensor)) pairs.set(tensor, tensor);
    }
  }
  const floatNames = [...pairs.keys()];
  const squaredError = new Map<string, number>();
  const squaredNorm = new Map<string, number>();
  await withExposedModel(floatModel, floatNames, (runFloat) =>
    withExposedModel(quantized, [...pairs.values()], async (runQuantized) => {
      for (const sample of samples) {
        const want = await runFloat(sample);
        const got = await runQuantized(sample);
        for (const [tensor, dequantized] of pairs) {
          const f = want.get(tensor);
          const q = got.get(dequantized);
          if (f === undefined || q === undefined || f.length !== q.length) continue;
          let error = 0;
          let norm = 0;
          for (let i = 0; i < f.length; i++) {
            error += (q[i] - f[i]) ** 2;
            norm += f[i] ** 2;
          }
          squaredError.set(tensor, (squaredError.get(tensor) ?? 0) + error);
          squaredNorm.set(tensor, (squaredNorm.get(tensor) ?? 0) + norm);
        }
      }
    }),
  );
  const relative = (tensor: string) => {
    const norm = squaredNorm.get(tensor);
    if (norm === undefined) return undefined;
    return norm > 0 ? Math.sqrt(squaredError.get(tensor)! / norm) : Math.sqrt(squaredError.get(tensor)!);
  };
  const errors: NodeError[] = [];
  for (const node of nodes) {
    const relativeError = relative(node.output[0]);
    if (relativeError === undefined) continue;
    const inputs = node.input.map(relative).filter((value): value is number => value !== undefined);
    errors.push({
      node: node.name || node.output[0],
      op: node.opType,
      tensor: node.output[0],
      relativeError,
      addedError: relativeError - Math.max(0, ...inputs),
    });
  }
  return errors.sort((a, b) => b.addedError - a.addedError);
}

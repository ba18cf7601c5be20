/**
 * Writes the graph ONNX Runtime builds at a given optimization level (the session option
 * optimizedModelFilePath) and measures what it changed: size, nodes, operators and latency.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { GraphOptimizationLevel } from '../config/model-config.js';
import { readModelInfo, type ModelInfo } from '../onnx/model-file.js';
import { nearestRank } from '../observability/percentile.js';
import { withModelPool } from '../runtime/model-pool.js';
import type { ModelSignature } from '../runtime/signature.js';
import { warmupInputs } from '../runtime/warmup.js';
import type { WorkerPool } from '../runtime/worker-pool.js';

export interface GraphSummary {
  path: string;
  fileSize: number;
  nodeCount: number;
  operatorHistogram: ModelInfo['operatorHistogram'];
}

export interface LatencySummary {
  runs: number;
  /** Median time inside session.run, in the worker. */
  medianMs: number;
  p90Ms: number;
}

export interface OptimizeReport {
  level: GraphOptimizationLevel;
  before: GraphSummary;
  after: GraphSummary;
  /** Both graphs run with optimizations off, so the difference is what the written graph gained. */
  latency: { before: LatencySummary; after: LatencySummary; speedup: number };
}

const LATENCY_WARMUP_RUNS = 3;

export async function optimizeModel(
  modelPath: string,
  outputPath: string,
  level: GraphOptimizationLevel,
  runs: number,
): Promise<OptimizeReport> {
  await mkdir(path.dirname(path.resolve(outputPath)), { recursive: true });
  // Creating the session writes the optimized graph; nothing needs to run.
  await withModelPool(modelPath, async () => undefined, {
    graphOptimizationLevel: level,
    optimizedModelPath: outputPath,
  });
  const before = summarize(await readModelInfo(modelPath));
  const after = summarize(await readModelInfo(outputPath));
  const timing = { graphOptimizationLevel: 'disabled' as const };
  const latencyBefore = await withModelPool(modelPath, (pool, signature) => measure(pool, signature, runs), timing);
  const latencyAfter = await withModelPool(outputPath, (pool, signature) => measure(pool, signature, runs), timing);
  return {
    level,
    before,
    after,
    latency: { before: latencyBefore, after: latencyAfter, speedup: latencyBefore.medianMs / latencyAfter.medianMs },
  };
}

function summarize(info: ModelInfo): GraphSummary {
  return {
    path: info.path,
    fileSize: info.fileSize,
    nodeCount: info.nodeCount,
    operatorHistogram: info.operatorHistogram,
  };
}

/** Runs the synthesised warmup inputs (dynamic batch 1) and keeps the worker's session.run times. */
async function measure(pool: WorkerPool, signature: ModelSignature, runs: number): Promise<LatencySummary> {
  const tensors = warmupInputs(signature, {}).tensors.map((tensor, i) => ({
    ...tensor,
    name: signature.inputs[i].name,
  }));
  const times: number[] = [];
  for (let i = 0; i < LATENCY_WARMUP_RUNS + runs; i++) {
    // The pool transfers input buffers to the worker, so every run gets its own copy.
    const inputs = tensors.map((tensor) => ({ ...tensor, data: tensor.data.slice() }));
    const { computeMs } = await pool.run(inputs);
    if (i >= LATENCY_WARMUP_RUNS) times.push(computeMs);
  }
  times.sort((a, b) => a - b);
  return { runs, medianMs: nearestRank(times, 50)!, p90Ms: nearestRank(times, 90)! };
}

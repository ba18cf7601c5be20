/**
 * Calibration: the float model runs every sample in onnxruntime-node (one worker, as verify runs
 * it) with the intermediate tensors it needs made graph outputs, and the range each tensor takes
 * becomes its quantization range: min–max, or percentile (the extreme tails cut off, from a
 * histogram built in a second pass over the samples once the full ranges are known).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cloneModelProto, writeModelProto, type ModelProtoMessage } from '../onnx/model-proto.js';
import type { NamedTensor } from '../protocol/datatypes.js';
import { withModelPool } from '../runtime/model-pool.js';
import type { WorkerPool } from '../runtime/worker-pool.js';

export type CalibrationMethod = 'minmax' | 'percentile';

export interface Range {
  min: number;
  max: number;
}

export interface CalibrationOptions {
  method: CalibrationMethod;
  /** For percentile: the share of values kept, in percent (default 99.999). */
  percentile?: number;
}

const HISTOGRAM_BINS = 2048;

/** The model with these tensors added to its graph outputs (type and shape left to ONNX Runtime to infer). */
export function exposeTensors(model: ModelProtoMessage, names: Iterable<string>): ModelProtoMessage {
  const exposed = cloneModelProto(model);
  const outputs = new Set(exposed.graph.output.map((output) => output.name));
  for (const name of names) {
    if (outputs.has(name)) continue;
    exposed.graph.output.push({ name });
    outputs.add(name);
  }
  return exposed;
}

/** Runs one sample and returns the float values of the exposed tensors, by name. */
export type ExposedRun = (sample: NamedTensor[]) => Promise<Map<string, Float32Array>>;

/**
 * Starts `model` with `names` exposed in one worker (from a temporary file, removed afterwards)
 * and hands `use` a function that runs a sample.
 */
export async function withExposedModel<T>(
  model: ModelProtoMessage,
  names: string[],
  use: (run: ExposedRun) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-quantize-'));
  try {
    const file = path.join(dir, 'exposed.onnx');
    await writeModelProto(file, exposeTensors(model, names));
    return await withModelPool(file, (pool) => use((sample) => runSample(pool, sample, names)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runSample(pool: WorkerPool, sample: NamedTensor[], names: string[]): Promise<Map<string, Float32Array>> {
  // The pool transfers input buffers to the worker: each run gets copies, so samples can run again.
  const inputs = sample.map((tensor) => ({ ...tensor, data: tensor.data.slice() }) as NamedTensor);
  const { outputs } = await pool.run(inputs, names);
  const values = new Map<string, Float32Array>();
  for (const output of outputs) if (output.data instanceof Float32Array) values.set(output.name, output.data);
  return values;
}

/** Which of the named tensors are not float32 (shape arithmetic, indices): one run of the first sample tells. */
export async function nonFloatTensors(
  model: ModelProtoMessage,
  names: string[],
  sample: NamedTensor[],
): Promise<Set<string>> {
  const values = await withExposedModel(model, names, (run) => run(sample));
  return new Set(names.filter((name) => !values.has(name)));
}

/** The range of every named tensor over all samples. */
export async function calibrate(
  model: ModelProtoMessage,
  names: string[],
  samples: NamedTensor[][],
  options: CalibrationOptions,
): Promise<Map<string, Range>> {
  if (samples.length === 0) throw new Error('calibration needs at least one sample input');
  const ranges = new Map<string, Range>();
  const histograms = new Map<string, Float64Array>();
  const percentile = options.percentile ?? 99.999;
  if (!(percentile > 0 && percentile <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${percentile}`);
  const passes = options.method === 'percentile' ? 2 : 1;
  const visit = (outputs: Map<string, Float32Array>, secondPass: boolean) => {
    for (const [name, data] of outputs) {
      if (!secondPass) {
        const range = ranges.get(name) ?? { min: Infinity, max: -Infinity };
        for (let i = 0; i < data.length; i++) {
          const v = data[i];
          if (v < range.min) range.min = v;
          if (v > range.max) range.max = v;
        }
        ranges.set(name, range);
        continue;
      }
      const { min, max } = ranges.get(name)!;
      if (!(max > min)) continue;
      let histogram = histograms.get(name);
      if (histogram === undefined) histograms.set(name, (histogram = new Float64Array(HISTOGRAM_BINS)));
      const scale = HISTOGRAM_BINS / (max - min);
      for (let i = 0; i < data.length; i++) {
        histogram[Math.min(HISTOGRAM_BINS - 1, Math.floor((data[i] - min) * scale))]++;
      }
    }
  };
  await withExposedModel(model, names, async (run) => {
    for (let pass = 0; pass < passes; pass++) {
      for (const sample of samples) visit(await run(sample), pass === 1);
    }
  });
  for (const name of names) {
    if (!ranges.has(name)) throw new Error(`calibration got no float values for tensor ${name}`);
  }
  if (options.method === 'percentile') {
    for (const [name, histogram] of histograms) ranges.set(name, cutTails(ranges.get(name)!, histogram, percentile));
  }
  return ranges;
}

/** The narrowest range that keeps `percentile` % of the values: (100 − percentile)/2 % cut from each tail. */
function cutTails(range: Range, histogram: Float64Array, percentile: number): Range {
  const total = histogram.reduce((sum, n) => sum + n, 0);
  const cut = (total * (100 - percentile)) / 200;
  const width = (range.max - range.min) / histogram.length;
  let low = 0;
  for (let seen = 0; low < histogram.length - 1 && seen + histogram[low] <= cut; low++) seen += histogram[low];
  let high = histogram.length - 1;
  for (let seen = 0; high > low && seen + histogram[high] <= cut; high--) seen += histogram[high];
  return { min: range.min + low * width, max: range.min + (high + 1) * width };
}

/**
 * `optimize --fp16`: the Python helper stores the float32 weights as float16 (each followed by a
 * Cast back to float32, so compute stays float32), then both models run on the same inputs in
 * onnx-serve's runtime and every output of the float16 model is compared with the float32 one.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { runHelper } from '../convert/convert.js';
import { findPython } from '../convert/python.js';
import { float16BitsOf, type NamedTensor } from '../protocol/datatypes.js';
import { withModelPool } from '../runtime/model-pool.js';
import { warmupInputs } from '../runtime/warmup.js';
import { compareTensors, type TensorDifference, type Tolerance } from '../verify/compare.js';
import { findTestDataSets, readTestDataSet } from '../verify/test-data.js';

/** What rounding the weights to float16 usually costs, relative to outputs of order 1. */
export const FLOAT16_TOLERANCE: Tolerance = { atol: 1e-2, rtol: 1e-2 };

export interface Float16Options {
  /** Make float graph inputs and outputs float16 too (default: they stay float32). */
  fp16Io: boolean;
  python?: string;
  tolerance?: Tolerance;
}

export interface Float16OutputReport extends TensorDifference {
  name: string;
  /** The float16 model's datatype for this output. */
  datatype: string;
  pass: boolean;
}

export interface Float16Report {
  float16: true;
  fp16Io: boolean;
  before: { path: string; fileSize: number };
  after: { path: string; fileSize: number };
  /** after.fileSize / before.fileSize */
  sizeRatio: number;
  convertedInitializers: number;
  /** Float initializers left in float32 (values beyond the float16 range). */
  float32Initializers: number;
  /** Where the compared inputs came from: the model folder's test data sets, or synthetic values. */
  inputs: 'test data' | 'synthetic';
  sets: number;
  tolerance: Tolerance;
  outputs: Float16OutputReport[];
  /** Every output within the tolerance. */
  pass: boolean;
}

type HelperResult =
  | { ok: true; output: string; converted_initializers: number; float32_initializers: number }
  | { ok: false; stage: string; message: string; error: string };

export async function float16Model(
  modelPath: string,
  outputPath: string,
  options: Float16Options,
): Promise<Float16Report> {
  const python = await findPython(options.python);
  const [result] = await runHelper<HelperResult>(python.path, [
    { task: 'float16', model: path.resolve(modelPath), output: path.resolve(outputPath), fp16_io: options.fp16Io },
  ]);
  if (!result.ok)
    throw new Error(`cannot convert ${modelPath} to float16: ${result.message}\n  caused by ${result.error}`);
  const tolerance = options.tolerance ?? FLOAT16_TOLERANCE;

  const setDirs = await findTestDataSets(path.dirname(path.resolve(modelPath)));
  const { inputSets, expected } = await withModelPool(modelPath, async (pool, signature) => {
    const names = signature.inputs.map((spec) => spec.name);
    const sets: NamedTensor[][] = [];
    for (const dir of setDirs) sets.push((await readTestDataSet(dir, names, [])).inputs);
    if (sets.length === 0) {
      sets.push(warmupInputs(signature, {}).tensors.map((tensor, i) => ({ ...tensor, name: names[i] })));
    }
    const outputs: NamedTensor[][] = [];
    for (const inputs of sets) outputs.push((await pool.run(copies(inputs))).outputs);
    return { inputSets: sets, expected: outputs };
  });

  const outputs = await withModelPool(outputPath, async (pool, signature) => {
    const reports = new Map<string, Float16OutputReport>();
    for (const [index, inputs] of inputSets.entries()) {
      const fed = copies(inputs).map((tensor) => {
        const spec = signature.inputs.find((input) => input.name === tensor.name);
        return spec?.datatype === 'FP16' && tensor.datatype === 'FP32' ? toFloat16(tensor) : tensor;
      });
      const { outputs: got } = await pool.run(fed);
      for (const want of expected[index]) {
        const actual = got.find((tensor) => tensor.name === want.name);
        if (actual === undefined) throw new Error(`the float16 model has no output ${want.name}`);
        const difference = compareTensors(want, actual, tolerance);
        const report = reports.get(want.name) ?? {
          name: want.name,
          datatype: actual.datatype,
          pass: true,
          elements: 0,
          mismatched: 0,
          maxAbsError: 0,
          maxRelError: 0,
        };
        report.elements += difference.elements;
        report.mismatched += difference.mismatched;
        report.maxAbsError = Math.max(report.maxAbsError, difference.maxAbsError);
        report.maxRelError = Math.max(report.maxRelError, difference.maxRelError);
        report.pass = report.mismatched === 0;
        reports.set(want.name, report);
      }
    }
    return [...reports.values()];
  });

  const before = { path: modelPath, fileSize: (await stat(modelPath)).size };
  const after = { path: outputPath, fileSize: (await stat(outputPath)).size };
  return {
    float16: true,
    fp16Io: options.fp16Io,
    before,
    after,
    sizeRatio: after.fileSize / before.fileSize,
    convertedInitializers: result.converted_initializers,
    float32Initializers: result.float32_initializers,
    inputs: setDirs.length > 0 ? 'test data' : 'synthetic',
    sets: inputSets.length,
    tolerance,
    outputs,
    pass: outputs.every((output) => output.pass),
  };
}

/** The pool transfers input buffers to the worker, so every run gets its own copy. */
function copies(tensors: NamedTensor[]): NamedTensor[] {
  return tensors.map((tensor) => ({ ...tensor, data: tensor.data.slice() }) as NamedTensor);
}

function toFloat16(tensor: NamedTensor): NamedTensor {
  return { ...tensor, datatype: 'FP16', data: Uint16Array.from(tensor.data as Float32Array, float16BitsOf) };
}

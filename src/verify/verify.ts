/**
 * Runs a model's ONNX test data sets through onnx-serve's own runtime (the worker pool, with the
 * session settings serving uses) and compares every output with what PyTorch produced.
 */
import path from 'node:path';
import type { NamedTensor } from '../protocol/datatypes.js';
import { withModelPool } from '../runtime/model-pool.js';
import type { ModelSignature } from '../runtime/signature.js';
import type { WorkerPool } from '../runtime/worker-pool.js';
import { compareTensors, type TensorDifference, type Tolerance } from './compare.js';
import { findTestDataSets, readTestDataSet } from './test-data.js';

export interface OutputReport extends TensorDifference {
  name: string;
  datatype: string;
  pass: boolean;
  /** Why it failed beyond numbers: a wrong shape or datatype, a missing output. */
  problems: string[];
}

export interface VerifyReport {
  model: string;
  /** The folder the test_data_set_* folders were read from. */
  testData: string;
  sets: number;
  tolerance: Tolerance;
  outputs: OutputReport[];
  /** Test data sets that could not be run at all. */
  errors: string[];
  pass: boolean;
}

/** Loads the model in one worker, as serving does, and verifies it; dir defaults to the model's folder. */
export async function verifyModel(modelPath: string, tolerance: Tolerance, dir?: string): Promise<VerifyReport> {
  const testData = path.resolve(dir ?? path.dirname(modelPath));
  const sets = await findTestDataSets(testData);
  if (sets.length === 0)
    throw new Error(`no test_data_set_* folder in ${testData}; expected ONNX test data sets there`);
  return withModelPool(modelPath, (pool, signature) => verifyWithPool(pool, signature, modelPath, sets, tolerance));
}

/** Verifies a started pool against the given test data set folders. */
export async function verifyWithPool(
  pool: WorkerPool,
  signature: ModelSignature,
  modelPath: string,
  setDirs: string[],
  tolerance: Tolerance,
): Promise<VerifyReport> {
  const inputNames = signature.inputs.map((spec) => spec.name);
  const outputNames = signature.outputs.map((spec) => spec.name);
  const reports = new Map<string, OutputReport>();
  const errors: string[] = [];
  for (const dir of setDirs) {
    const label = path.basename(dir);
    let outputs: NamedTensor[];
    let expected: NamedTensor[];
    try {
      const set = await readTestDataSet(dir, inputNames, outputNames);
      expected = set.expected;
      const unknown = expected.filter((tensor) => !outputNames.includes(tensor.name));
      for (const tensor of unknown) {
        const problem = `the model has no output "${tensor.name}" (outputs: ${outputNames.join(', ')})`;
        const { problems } = reportFor(reports, tensor);
        if (!problems.includes(problem)) problems.push(problem);
      }
      expected = expected.filter((tensor) => outputNames.includes(tensor.name));
      if (expected.length === 0) continue;
      outputs = (
        await pool.run(
          set.inputs,
          expected.map((tensor) => tensor.name),
        )
      ).outputs;
    } catch (error) {
      errors.push(`${label}: ${(error as Error).message}`);
      continue;
    }
    for (const want of expected) {
      const report = reportFor(reports, want);
      const got = outputs.find((tensor) => tensor.name === want.name)!;
      if (got.datatype !== want.datatype) {
        report.problems.push(`${label}: datatype ${got.datatype}, expected ${want.datatype}`);
      } else if (got.shape.join('x') !== want.shape.join('x')) {
        report.problems.push(`${label}: shape [${got.shape.join(', ')}], expected [${want.shape.join(', ')}]`);
      } else {
        const difference = compareTensors(want, got, tolerance);
        report.elements += difference.elements;
        report.mismatched += difference.mismatched;
        report.maxAbsError = Math.max(report.maxAbsError, difference.maxAbsError);
        report.maxRelError = Math.max(report.maxRelError, difference.maxRelError);
      }
    }
  }
  const outputReports = [...reports.values()].map((report) => ({
    ...report,
    pass: report.problems.length === 0 && report.mismatched === 0,
  }));
  return {
    model: modelPath,
    testData: setDirs.length > 0 ? path.dirname(setDirs[0]) : '',
    sets: setDirs.length,
    tolerance,
    outputs: outputReports,
    errors,
    pass: errors.length === 0 && outputReports.length > 0 && outputReports.every((report) => report.pass),
  };
}

/** One line naming each failing output and why: for error messages and logs. */
export function describeVerifyFailure(report: VerifyReport): string {
  const reasons = [
    ...report.errors,
    ...report.outputs
      .filter((output) => !output.pass)
      .map((output) =>
        output.problems.length > 0
          ? `output ${output.name}: ${output.problems.join('; ')}`
          : `output ${output.name}: ${output.mismatched} of ${output.elements} elements differ beyond ` +
            `atol ${report.tolerance.atol} + rtol ${report.tolerance.rtol}·|expected| (max abs error ${formatError(output.maxAbsError)}, ` +
            `max rel error ${formatError(output.maxRelError)})`,
      ),
  ];
  if (reasons.length === 0 && report.outputs.length === 0) reasons.push('the test data hold no output to compare');
  return reasons.join('; ');
}

export function formatError(value: number): string {
  return value === 0 ? '0' : value.toExponential(2);
}

function reportFor(reports: Map<string, OutputReport>, tensor: NamedTensor): OutputReport {
  let report = reports.get(tensor.name);
  if (report === undefined) {
    report = {
      name: tensor.name,
      datatype: tensor.datatype,
      pass: false,
      problems: [],
      elements: 0,
      mismatched: 0,
      maxAbsError: 0,
      maxRelError: 0,
    };
    reports.set(tensor.name, report);
  }
  return report;
}

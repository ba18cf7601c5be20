/**
 * `onnx-serve verify MODEL.onnx [DIR]`: runs the ONNX test data sets (by default the ones next to
 * the model) through onnx-serve's runtime and reports, per output, how far it is from the reference.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_TOLERANCE, type Tolerance } from '../verify/compare.js';
import { describeVerifyFailure, formatError, verifyModel, type VerifyReport } from '../verify/verify.js';

interface VerifyFlags {
  atol: number;
  rtol: number;
  json?: boolean;
}

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('check a model against ONNX test data sets (test_data_set_N/input_K.pb, output_K.pb)')
    .argument('<model>', 'the .onnx file')
    .argument('[dir]', 'folder holding test_data_set_* (default: the model’s folder)')
    .option('--atol <number>', 'absolute tolerance', parseTolerance, DEFAULT_TOLERANCE.atol)
    .option('--rtol <number>', 'relative tolerance', parseTolerance, DEFAULT_TOLERANCE.rtol)
    .option('--json', 'print the report as JSON')
    .action(async (model: string, dir: string | undefined, flags: VerifyFlags) => {
      const report = await verifyModel(model, toleranceOf(flags), dir);
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatVerifyReport(report));
      if (!report.pass) process.exitCode = 1;
    });
}

export function toleranceOf(flags: { atol: number; rtol: number }): Tolerance {
  return { atol: flags.atol, rtol: flags.rtol };
}

export function parseTolerance(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`expected a number ≥ 0 such as 1e-4, got "${value}"`);
  }
  return n;
}

export function formatVerifyReport(report: VerifyReport): string {
  const rows = report.outputs.map((output) => [
    output.name,
    output.datatype,
    formatError(output.maxAbsError),
    formatError(output.maxRelError),
    `${output.mismatched}/${output.elements}`,
    output.pass ? 'pass' : 'FAIL',
  ]);
  const table = [['OUTPUT', 'DATATYPE', 'MAX ABS ERROR', 'MAX REL ERROR', 'MISMATCHED', 'VERDICT'], ...rows];
  const widths = table[0].map((_, column) => Math.max(...table.map((row) => row[column].length)));
  return [
    `Verified ${report.model} on ${report.sets} test data sets from ${report.testData} ` +
      `(atol ${report.tolerance.atol}, rtol ${report.tolerance.rtol})`,
    ...table.map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    ),
    report.pass ? 'PASS' : `FAIL: ${describeVerifyFailure(report)}`,
  ].join('\n');
}

/**
 * `onnx-serve verify MODEL.onnx [DIR]`: runs the ONNX test data sets (by default the ones next to
 * the model) through onnx-serve's runtime and reports, per output, how far it is from the reference.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { readModelInfo } from '../onnx/model-file.js';
import { readSamples } from '../quantize/samples.js';
import { withModelPool } from '../runtime/model-pool.js';
import { DEFAULT_AGREEMENT, verifyAgreement, type AgreementReport, type OutputAgreement } from '../verify/agreement.js';
import { DEFAULT_TOLERANCE, type Tolerance } from '../verify/compare.js';
import { describeVerifyFailure, formatError, verifyModel, type VerifyReport } from '../verify/verify.js';

const AGAINST_ONLY = [
  ['config', '--config'],
  ['minCosine', '--min-cosine'],
  ['minTop1', '--min-top1'],
  ['maxAbs', '--max-abs'],
] as const;

interface VerifyFlags {
  atol: number;
  rtol: number;
  json?: boolean;
  against?: string;
  config?: string;
  minCosine: number;
  minTop1: number;
  maxAbs?: number;
}

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('check a model against ONNX test data sets (test_data_set_N/input_K.pb, output_K.pb)')
    .argument('<model>', 'the .onnx file')
    .argument(
      '[dir]',
      'folder holding test_data_set_* (default: the model’s folder); with --against, held-out inputs: test data sets, images, .npy or .npz',
    )
    .option('--atol <number>', 'absolute tolerance', parseTolerance, DEFAULT_TOLERANCE.atol)
    .option('--rtol <number>', 'relative tolerance', parseTolerance, DEFAULT_TOLERANCE.rtol)
    .option('--json', 'print the report as JSON')
    .option('--against <float.onnx>', 'compare with this reference model (a quantized model with its float source)')
    .option('--config <config.yaml>', 'with --against and images: the config whose preprocess turns them into tensors')
    .option(
      '--min-cosine <number>',
      'with --against: lowest cosine similarity per output',
      parseFraction,
      DEFAULT_AGREEMENT.minCosine,
    )
    .option(
      '--min-top1 <number>',
      'with --against: lowest top-1 agreement for outputs with a class axis',
      parseFraction,
      DEFAULT_AGREEMENT.minTop1,
    )
    .option(
      '--max-abs <number>',
      'with --against: largest absolute error per output (default: not checked)',
      parseTolerance,
    )
    .action(async (model: string, dir: string | undefined, flags: VerifyFlags, command: Command) => {
      for (const [option, flag] of AGAINST_ONLY) {
        if (flags.against === undefined && command.getOptionValueSource(option) === 'cli') {
          throw new Error(`${flag} needs --against FLOAT.onnx`);
        }
      }
      if (flags.against !== undefined) {
        const report = await verifyAgainst(model, flags.against, dir, flags);
        console.log(flags.json ? JSON.stringify(report, null, 2) : formatAgreementReport(report));
        if (!report.pass) process.exitCode = 1;
        return;
      }
      const report = await verifyModel(model, toleranceOf(flags), dir);
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatVerifyReport(report));
      if (!report.pass) process.exitCode = 1;
    });
}

async function verifyAgainst(
  model: string,
  reference: string,
  inputs: string | undefined,
  flags: VerifyFlags,
): Promise<AgreementReport> {
  const signature = await withModelPool(reference, async (_pool, signature) => signature);
  const samples = await readSamples(inputs, reference, signature, flags.config);
  const metadata = (await readModelInfo(model)).metadataProps['onnx_serve.quantize'];
  const calibratedOn =
    metadata === undefined ? undefined : (JSON.parse(metadata) as { calibration?: string }).calibration;
  return verifyAgreement(model, reference, samples, calibratedOn, {
    minCosine: flags.minCosine,
    minTop1: flags.minTop1,
    maxAbsError: flags.maxAbs,
  });
}

/** One row per output: errors, cosine, top-1 agreement. */
export function formatAgreement(outputs: Array<OutputAgreement & { pass?: boolean }>): string {
  const table = [
    [
      'OUTPUT',
      'MAX ABS ERROR',
      'MAX REL ERROR',
      'COSINE',
      'TOP-1 AGREE',
      ...(outputs[0]?.pass === undefined ? [] : ['VERDICT']),
    ],
    ...outputs.map((output) => [
      output.name,
      formatError(output.maxAbsError),
      formatError(output.maxRelError),
      output.cosine.toFixed(5),
      output.top1Agreement === undefined ? '-' : `${(output.top1Agreement * 100).toFixed(1)}%`,
      ...(output.pass === undefined ? [] : [output.pass ? 'pass' : 'FAIL']),
    ]),
  ];
  const widths = table[0].map((_, column) => Math.max(...table.map((row) => row[column].length)));
  return table
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatAgreementReport(report: AgreementReport): string {
  const { thresholds } = report;
  const limits = [
    `cosine ≥ ${thresholds.minCosine}`,
    `top-1 agreement ≥ ${thresholds.minTop1}`,
    ...(thresholds.maxAbsError === undefined ? [] : [`max abs error ≤ ${thresholds.maxAbsError}`]),
  ];
  return [
    `Compared ${report.model} with ${report.reference} on ${report.inputs} (${report.samples} runs; ${limits.join(', ')})`,
    ...(report.heldOut ? [] : ['Note: these are the inputs the model was calibrated on; held-out inputs tell more.']),
    formatAgreement(report.outputs),
    report.pass
      ? 'PASS'
      : `FAIL: ${report.outputs
          .filter((o) => !o.pass)
          .map((o) => o.name)
          .join(', ')} beyond the thresholds`,
  ].join('\n');
}

function parseFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 1))
    throw new InvalidArgumentError(`expected a number from 0 to 1, got "${value}"`);
  return n;
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

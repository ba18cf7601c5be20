/**
 * `onnx-serve quantize MODEL.onnx --output OUT.onnx`: an int8 model, static (QDQ, calibrated on
 * sample inputs) by default or `--dynamic`, with how far its outputs are from the float model's
 * and, for static quantization, which quantized node adds the most error.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { CalibrationMethod } from '../quantize/calibrate.js';
import { quantizeModel, type QuantizeReport } from '../quantize/quantize.js';
import { formatAgreement } from './verify.js';

const METHODS: CalibrationMethod[] = ['minmax', 'percentile'];

interface QuantizeFlags {
  output: string;
  dynamic?: boolean;
  calibration?: string;
  config?: string;
  samples: number;
  method: CalibrationMethod;
  percentile: number;
  perTensor?: boolean;
  reduceRange: boolean;
  exclude: string[];
  simplify: boolean;
  reportSamples: number;
  json?: boolean;
}

export function registerQuantizeCommand(program: Command): void {
  program
    .command('quantize')
    .description(
      'write an int8 model (static QDQ calibrated on sample inputs, or --dynamic) and compare it with the float one',
    )
    .argument('<model>', 'the float .onnx file')
    .requiredOption('--output <path>', 'where to write the int8 .onnx file')
    .option(
      '--dynamic',
      'dynamic quantization of MatMul/Gemm weights: no calibration, activations quantized at run time',
    )
    .option(
      '--calibration <path>',
      'sample inputs: a folder of test_data_set_* folders, of images (needs the preprocess config), of .npy/.npz files, or one .npy/.npz file (default: the test data sets next to the model)',
    )
    .option(
      '--config <config.yaml>',
      'the config whose preprocess turns calibration images into tensors (default: the model’s own)',
    )
    .option('--samples <n>', 'use at most this many calibration samples', parsePositive, 100)
    .option('--method <method>', `calibration: ${METHODS.join(', ')}`, parseMethod, 'minmax')
    .option(
      '--percentile <p>',
      'with --method percentile: the percent of values the range keeps',
      parsePercentile,
      99.999,
    )
    .option('--per-tensor', 'one weight scale per tensor instead of per output channel')
    .option(
      '--no-reduce-range',
      'full 8-bit weights, for CPUs with VNNI (AVX512-VNNI, AVX-VNNI) or ARM; the default 7-bit weights avoid overflow in AVX2’s int8 products',
    )
    .option(
      '--no-simplify',
      'quantize the graph as it is, without first folding scalar scales and shifts into convolutions and hard-swish chains into HardSwish',
    )
    .option('--exclude <names>', 'node names or op types to leave in float, comma-separated (repeatable)', collect, [])
    .option('--report-samples <n>', 'samples for the per-node error report (0 skips it)', parseCount, 4)
    .option('--json', 'print the report as JSON')
    .action(async (model: string, flags: QuantizeFlags, command: Command) => {
      if (flags.dynamic === true) {
        for (const option of ['method', 'percentile', 'config']) {
          if (command.getOptionValueSource(option) === 'cli') {
            throw new Error(`--${option} is for static quantization; --dynamic needs no calibration`);
          }
        }
      }
      if (flags.method !== 'percentile' && command.getOptionValueSource('percentile') === 'cli') {
        throw new Error('--percentile needs --method percentile');
      }
      const report = await quantizeModel(model, flags.output, {
        mode: flags.dynamic === true ? 'dynamic' : 'static',
        method: flags.method,
        percentile: flags.percentile,
        perChannel: flags.perTensor !== true,
        reduceRange: flags.reduceRange,
        exclude: flags.exclude,
        calibration: flags.calibration,
        config: flags.config,
        maxSamples: flags.samples,
        reportSamples: flags.reportSamples,
        simplify: flags.simplify,
      });
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatQuantizeReport(report));
    });
}

const NODE_ROWS = 10;

export function formatQuantizeReport(report: QuantizeReport): string {
  const { before, after, options } = report;
  const settings = [
    report.mode,
    options.method === 'percentile' ? `percentile ${options.percentile}` : options.method,
    options.perChannel ? 'per-channel weights' : 'per-tensor weights',
    options.reduceRange ? '7-bit weights (reduce-range)' : '8-bit weights',
  ].filter((part) => part !== undefined);
  const ops = Object.entries(report.quantizedOps)
    .map(([op, count]) => `${op} ${count}`)
    .join(', ');
  const { hardSwish, foldedIntoConv, keptOpset } = report.simplified;
  const lines = [
    `Quantized ${before.path} into ${after.path} (${settings.join(', ')}) in ${report.seconds.toFixed(1)} s`,
    `Size:     ${before.fileSize} → ${after.fileSize} bytes (${(report.sizeRatio * 100).toFixed(1)}%)`,
    `Nodes:    ${report.quantizedNodes} quantized (${ops})` +
      (report.foldedActivations > 0 ? `, ${report.foldedActivations} Relu/Clip folded into them` : '') +
      (report.excluded.length > 0 ? `; left in float: ${report.excluded.join(', ')}` : ''),
  ];
  if (hardSwish + foldedIntoConv > 0) {
    lines.push(
      `Simplified first: ${foldedIntoConv} Mul/Add by a constant folded into convolutions, ${hardSwish} hard-swish chains as ` +
        (keptOpset === undefined ? 'HardSwish' : `HardSigmoid × x (the model stays at its opset: ${keptOpset})`),
    );
  }
  if (report.calibration) {
    const { samples, source, seconds } = report.calibration;
    lines.push(`Calibration: ${samples} samples from ${source} (${seconds.toFixed(1)} s)`);
  }
  if (report.outputs.length > 0) {
    lines.push('', 'Against the float model on the calibration samples (run `verify --against` on held-out inputs):');
    lines.push(formatAgreement(report.outputs));
  }
  if (report.nodeErrors.length > 0) {
    const rows = report.nodeErrors.slice(0, NODE_ROWS);
    const width = Math.max(4, ...rows.map((row) => row.node.length));
    lines.push(
      '',
      `Error each quantized node adds (relative to the float tensor; worst ${rows.length} of ${report.nodeErrors.length}; leave the worst in float with --exclude):`,
      `${'NODE'.padEnd(width)}  ${'OP'.padEnd(17)}  OUTPUT ERR  ADDED ERR`,
      ...rows.map(
        (row) =>
          `${row.node.padEnd(width)}  ${row.op.padEnd(17)}  ${row.relativeError.toExponential(2).padStart(10)}  ${row.addedError.toExponential(2).padStart(9)}`,
      ),
    );
  }
  return lines.join('\n');
}

function collect(value: string, previous: string[]): string[] {
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  if (names.length === 0) throw new InvalidArgumentError('expected node names or op types, comma-separated');
  return [...previous, ...names];
}

function parseMethod(value: string): CalibrationMethod {
  if (!(METHODS as string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${METHODS.join(', ')}, got "${value}"`);
  }
  return value as CalibrationMethod;
}

function parsePercentile(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 50 && n <= 100)) {
    throw new InvalidArgumentError(`expected a percent above 50 and at most 100 such as 99.99, got "${value}"`);
  }
  return n;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return n;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number ≥ 0, got "${value}"`);
  return n;
}

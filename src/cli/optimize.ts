/**
 * `onnx-serve optimize MODEL.onnx --output OUT.onnx [--level all]`: the graph ONNX Runtime would
 * run, written to a file, with what changed and how much faster it runs. With `--fp16`: the model
 * with float16 weights instead, compared with the float32 one on the same inputs.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { GraphOptimizationLevel } from '../config/model-config.js';
import { float16Model, type Float16Report } from '../optimize/float16.js';
import { optimizeModel, type OptimizeReport } from '../optimize/optimize.js';
import { formatError } from '../verify/verify.js';

const LEVELS: GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

interface OptimizeFlags {
  output: string;
  level: GraphOptimizationLevel;
  runs: number;
  json?: boolean;
  fp16?: boolean;
  fp16Io?: boolean;
  python?: string;
}

export function registerOptimizeCommand(program: Command): void {
  program
    .command('optimize')
    .description('write the ONNX Runtime-optimized graph of a model and report size, nodes, operators and latency')
    .argument('<model>', 'the .onnx file')
    .requiredOption('--output <path>', 'where to write the optimized .onnx file')
    .option('--level <level>', `graph optimization level: ${LEVELS.join(', ')}`, parseLevel, 'extended')
    .option('--runs <n>', 'timed runs of each graph for the latency comparison', parseRuns, 20)
    .option('--json', 'print the report as JSON')
    .option('--fp16', 'write the model with float16 weights instead, verified against the float32 model')
    .option('--keep-io-types', 'with --fp16: graph inputs and outputs stay float32 (the default)')
    .option('--fp16-io', 'with --fp16: graph inputs and outputs become float16 too')
    .option('--python <path>', 'with --fp16: the Python interpreter with onnx (default: searched, as for convert)')
    .action(async (model: string, flags: OptimizeFlags, command: Command) => {
      if (flags.fp16 !== true) {
        for (const option of ['fp16Io', 'keepIoTypes', 'python']) {
          if (command.getOptionValue(option) !== undefined) throw new Error(`--${kebab(option)} needs --fp16`);
        }
      } else {
        if (command.getOptionValueSource('level') === 'cli') throw new Error('--level and --fp16 cannot be combined');
        if (flags.fp16Io === true && command.getOptionValue('keepIoTypes') !== undefined) {
          throw new Error('--fp16-io and --keep-io-types cannot be combined');
        }
        const report = await float16Model(model, flags.output, { fp16Io: flags.fp16Io === true, python: flags.python });
        console.log(flags.json ? JSON.stringify(report, null, 2) : formatFloat16Report(report));
        return;
      }
      const report = await optimizeModel(model, flags.output, flags.level, flags.runs);
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatOptimizeReport(report));
    });
}

export function formatOptimizeReport(report: OptimizeReport): string {
  const { before, after, latency } = report;
  const ops = new Map<string, [number, number]>();
  for (const { op, count } of before.operatorHistogram) ops.set(op, [count, 0]);
  for (const { op, count } of after.operatorHistogram) ops.set(op, [ops.get(op)?.[0] ?? 0, count]);
  const rows = [...ops].sort((a, b) => b[1][0] + b[1][1] - (a[1][0] + a[1][1]));
  const width = Math.max(8, ...rows.map(([op]) => op.length));
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  return [
    `Optimized ${before.path} at level ${report.level} into ${after.path}`,
    `Size:    ${before.fileSize} → ${after.fileSize} bytes`,
    `Nodes:   ${before.nodeCount} → ${after.nodeCount}`,
    `Latency: median ${ms(latency.before.medianMs)} → ${ms(latency.after.medianMs)} ` +
      `(${latency.speedup.toFixed(2)}× speed; p90 ${ms(latency.before.p90Ms)} → ${ms(latency.after.p90Ms)}; ` +
      `${latency.after.runs} runs each, both run with optimizations off)`,
    '',
    `${'OPERATOR'.padEnd(width)}  BEFORE  AFTER`,
    ...rows.map(([op, [was, now]]) => `${op.padEnd(width)}  ${String(was).padStart(6)}  ${String(now).padStart(5)}`),
  ].join('\n');
}

export function formatFloat16Report(report: Float16Report): string {
  const { before, after, tolerance } = report;
  const width = Math.max(6, ...report.outputs.map((output) => output.name.length));
  return [
    `Converted ${before.path} to float16 weights in ${after.path} ` +
      `(inputs and outputs ${report.fp16Io ? 'float16' : 'float32'})`,
    `Size:    ${before.fileSize} → ${after.fileSize} bytes (${(report.sizeRatio * 100).toFixed(1)}%); ` +
      `${report.convertedInitializers} initializers in float16, ${report.float32Initializers} left in float32`,
    `Compared with the float32 model on ${report.sets} ${report.inputs === 'test data' ? 'test data sets' : 'synthetic input set'}, ` +
      `tolerance atol ${tolerance.atol} + rtol ${tolerance.rtol}·|expected|:`,
    '',
    `${'OUTPUT'.padEnd(width)}  DATATYPE  MAX ABS ERR  MAX REL ERR  WITHIN`,
    ...report.outputs.map(
      (output) =>
        `${output.name.padEnd(width)}  ${output.datatype.padEnd(8)}  ${formatError(output.maxAbsError).padStart(11)}  ` +
        `${formatError(output.maxRelError).padStart(11)}  ${output.pass ? 'yes' : `no (${output.mismatched} of ${output.elements})`}`,
    ),
  ].join('\n');
}

function kebab(option: string): string {
  return option.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

function parseLevel(value: string): GraphOptimizationLevel {
  if (!(LEVELS as string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${LEVELS.join(', ')}, got "${value}"`);
  }
  return value as GraphOptimizationLevel;
}

function parseRuns(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return n;
}

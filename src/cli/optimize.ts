/**
 * `onnx-serve optimize MODEL.onnx --output OUT.onnx [--level all]`: the graph ONNX Runtime would
 * run, written to a file, with what changed and how much faster it runs.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { GraphOptimizationLevel } from '../config/model-config.js';
import { optimizeModel, type OptimizeReport } from '../optimize/optimize.js';

const LEVELS: GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

interface OptimizeFlags {
  output: string;
  level: GraphOptimizationLevel;
  runs: number;
  json?: boolean;
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
    .action(async (model: string, flags: OptimizeFlags) => {
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

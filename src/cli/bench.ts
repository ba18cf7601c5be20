import { InvalidArgumentError, type Command } from 'commander';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatCsv, formatTable, runLevel, type LevelResult, type SendOne } from '../bench/load-generator.js';
import { concreteShapes, fetchModelMetadata, httpTarget, inProcessTarget, syntheticInputs } from '../bench/targets.js';
import { encodeRequest, type WireEncoding } from '../bench/wire.js';
import { startServer } from '../server/start.js';
import { protocolShape } from '../runtime/signature.js';

interface BenchFlags {
  model?: string;
  concurrency: number[];
  batch: number;
  requests?: number;
  duration: number;
  warmup: number;
  encoding: WireEncoding;
  shape: Record<string, number[]>;
  instances?: number;
  threads?: number;
  maxBatchSize?: number;
  maxQueueDelayMs?: number;
  json?: boolean;
  csv?: boolean;
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description(
      'measure throughput and latency per concurrency level, against a server URL or in-process on an .onnx file',
    )
    .argument('<target>', 'http://host:port of a running onnx-serve (with --model), or a .onnx file to load here')
    .option('--model <name>', 'model to call on a server (required with a URL)')
    .option('--concurrency <list>', 'requests in flight, e.g. 1,2,4,8,16', parseIntList, [1, 2, 4, 8, 16])
    .option('--batch <n>', 'items per request (dimension 0)', parsePositiveInt, 1)
    .option('--requests <n>', 'measured requests per level (with --duration, whichever ends first)', parsePositiveInt)
    .option('--duration <seconds>', 'seconds per level', parsePositiveNumber, 5)
    .option('--warmup <n>', 'requests per level before measuring', parseNonNegativeInt, 20)
    .option('--encoding <binary|json>', 'request and response bodies (URL targets)', parseEncoding, 'binary')
    .option('--shape <name=dims>', 'full shape of an input, e.g. x=1,3,48,192 (repeatable)', parseShape, {})
    .option('--instances <n>', 'in-process: worker instances', parsePositiveInt)
    .option('--threads <n>', 'in-process: intra-op threads per instance', parsePositiveInt)
    .option('--max-batch-size <n>', 'in-process: max_batch_size (0 = no batching)', parseNonNegativeInt)
    .option('--max-queue-delay-ms <ms>', 'in-process: dynamic_batching.max_queue_delay_ms', parseNonNegativeNumber)
    .option('--json', 'print the results as JSON')
    .option('--csv', 'print the results as CSV')
    .action(async (target: string, flags: BenchFlags) => {
      const results = /^https?:\/\//.test(target) ? await benchUrl(target, flags) : await benchFile(target, flags);
      if (flags.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      else if (flags.csv) process.stdout.write(`${formatCsv(results)}\n`);
      else process.stdout.write(`${formatTable(results)}\n`);
    });
}

async function sweep(flags: BenchFlags, sendFor: (concurrency: number) => { send: SendOne; close?: () => void }) {
  const results: LevelResult[] = [];
  for (const concurrency of flags.concurrency) {
    const { send, close } = sendFor(concurrency);
    const options = { concurrency, items: flags.batch, durationS: flags.duration, warmup: flags.warmup };
    results.push(
      await runLevel(send, flags.requests === undefined ? options : { ...options, requests: flags.requests }),
    );
    close?.();
    if (!flags.json && !flags.csv)
      process.stderr.write(`concurrency ${concurrency}: ${results.at(-1)!.throughput.toFixed(1)} infer/s\n`);
  }
  return results;
}

async function benchUrl(base: string, flags: BenchFlags): Promise<LevelResult[]> {
  if (flags.model === undefined) throw new InvalidArgumentError('--model is required with a server URL');
  const baseUrl = base.replace(/\/+$/, '');
  const metadata = await fetchModelMetadata(baseUrl, flags.model);
  const inputs = syntheticInputs(metadata.inputs, concreteShapes(metadata.inputs, flags.batch, flags.shape));
  const body = encodeRequest({ inputs }, flags.encoding);
  const url = `${baseUrl}/v2/models/${encodeURIComponent(flags.model)}/infer`;
  return sweep(flags, (concurrency) => httpTarget(url, body, concurrency));
}

/** In-process: the file served from a one-model repository whose config.yaml carries the flags. */
async function benchFile(file: string, flags: BenchFlags): Promise<LevelResult[]> {
  const repository = await mkdtemp(path.join(tmpdir(), 'onnx-serve-bench-'));
  const modelDir = path.join(repository, 'model');
  await mkdir(modelDir);
  await writeFile(path.join(modelDir, 'config.yaml'), benchConfigYaml(path.resolve(file), flags));
  const server = await startServer({ modelRepository: repository, port: 0, logLevel: 'warn' });
  try {
    const model = server.registry.resolveReady('model');
    const specs = model.loaded.signature.inputs.map((spec) => ({
      name: spec.name,
      datatype: spec.datatype ?? 'FP32',
      shape: protocolShape(spec.dims),
    }));
    const inputs = syntheticInputs(specs, concreteShapes(specs, flags.batch, flags.shape));
    return await sweep(flags, () => ({ send: inProcessTarget(model, inputs) }));
  } finally {
    await server.close();
    await rm(repository, { recursive: true, force: true });
  }
}

/** The config.yaml the in-process flags stand for (also what a tuning run would print). */
export function benchConfigYaml(
  source: string,
  flags: Pick<BenchFlags, 'instances' | 'threads' | 'maxBatchSize' | 'maxQueueDelayMs'>,
): string {
  const lines = [`source: ${JSON.stringify(source)}`, 'warmup: { runs: 3 }'];
  if (flags.instances !== undefined) lines.push(`instances: ${flags.instances}`);
  if (flags.threads !== undefined) lines.push(`session: { intra_op_threads: ${flags.threads} }`);
  if (flags.maxBatchSize !== undefined) lines.push(`max_batch_size: ${flags.maxBatchSize}`);
  if (flags.maxQueueDelayMs !== undefined)
    lines.push(`dynamic_batching: { max_queue_delay_ms: ${flags.maxQueueDelayMs} }`);
  return `${lines.join('\n')}\n`;
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}
function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return n;
}
function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
}
function parseNonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!(n >= 0)) throw new InvalidArgumentError(`expected a non-negative number, got "${value}"`);
  return n;
}
function parseIntList(value: string): number[] {
  return value.split(',').map((part) => parsePositiveInt(part.trim()));
}
function parseEncoding(value: string): WireEncoding {
  if (value !== 'binary' && value !== 'json') throw new InvalidArgumentError(`expected binary or json, got "${value}"`);
  return value;
}
function parseShape(value: string, previous: Record<string, number[]>): Record<string, number[]> {
  const match = /^([^=]+)=(\d+(?:,\d+)*)$/.exec(value);
  if (match === null) throw new InvalidArgumentError(`expected NAME=D1,D2,..., got "${value}"`);
  return { ...previous, [match[1]]: match[2].split(',').map(Number) };
}

/**
 * PyTorch eager vs onnx-serve on torchvision resnet50 and mobilenet_v3_small (random weights from
 * the same seed, the same input, the same thread count): per-request latency and sequential
 * throughput. onnx-serve runs the converted model in its worker pool, as `serve` does; its latency
 * is the round trip of pool.run (moving tensors to and from the worker included).
 *
 *   node --import tsx bench/torch-vs-onnx-serve.ts [--write]   (--write updates bench/RESULTS.md)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runExportHelper, type ExportJob } from '../src/convert/convert.js';
import { findPython } from '../src/convert/python.js';
import { readTensorProto } from '../src/onnx/model-file.js';
import { percentileOf } from '../src/observability/percentile.js';
import { cpuBudget } from '../src/runtime/cpu.js';
import { withModelPool } from '../src/runtime/model-pool.js';

const MODELS = [
  { name: 'resnet50', source: 'torchvision.models:resnet50', runs: 10 },
  { name: 'mobilenet_v3_small', source: 'torchvision.models:mobilenet_v3_small', runs: 100 },
];
const WARMUP = 5;
const SEED = 0;
const RESULTS = path.resolve('bench/RESULTS.md');
const START = '<!-- torch-vs-onnx-serve:start -->';
const END = '<!-- torch-vs-onnx-serve:end -->';

interface Timing {
  medianMs: number;
  p90Ms: number;
  perSecond: number;
}

function summarize(ms: number[]): Timing {
  const total = ms.reduce((a, b) => a + b, 0);
  return { medianMs: percentileOf(ms, 50), p90Ms: percentileOf(ms, 90), perSecond: (1000 * ms.length) / total };
}

async function torchEager(python: string, job: object): Promise<number[]> {
  const child = spawn(python, [path.resolve('bench/torch_eager.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stdin.end(JSON.stringify(job));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`bench/torch_eager.py exited with ${code}`);
  return (JSON.parse(out) as { ms: number[] }).ms;
}

async function main(): Promise<void> {
  const threads = cpuBudget().usable;
  const python = await findPython();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-serve-bench-'));
  try {
    const jobs: ExportJob[] = MODELS.map((model) => ({
      source: model.source,
      kwargs: { weights: null },
      inputs: [{ name: 'x', shape: [1, 3, 224, 224], dtype: 'float32' }],
      output: path.join(dir, model.name, 'model.onnx'),
      samples: 1,
      seed: SEED,
    }));
    const exported = await runExportHelper(python.path, jobs);
    const rows: string[] = [];
    for (const [i, model] of MODELS.entries()) {
      const result = exported[i];
      if (!result.ok) throw new Error(`${model.name}: ${result.message}: ${result.error}`);
      const inputFile = path.join(dir, model.name, 'test_data_set_0', 'input_0.pb');
      const input = readTensorProto(await readFile(inputFile));

      const torchMs = await torchEager(python.path, {
        source: model.source,
        kwargs: { weights: null },
        seed: SEED,
        input: inputFile,
        threads,
        warmup: WARMUP,
        runs: model.runs,
      });
      const ortMs = await withModelPool(
        result.output,
        async (pool) => {
          const times: number[] = [];
          for (let run = 0; run < WARMUP + model.runs; run++) {
            const started = performance.now();
            await pool.run([{ ...input, name: 'x', data: input.data.slice() }]);
            if (run >= WARMUP) times.push(performance.now() - started);
          }
          return times;
        },
        { intraOpThreads: threads, executionProviders: ['cpu'] },
      );
      const t = summarize(torchMs);
      const o = summarize(ortMs);
      rows.push(
        `| ${model.name} | ${t.medianMs.toFixed(1)} ms | ${o.medianMs.toFixed(1)} ms | ${(t.medianMs / o.medianMs).toFixed(1)}× | ` +
          `${t.p90Ms.toFixed(1)} / ${o.p90Ms.toFixed(1)} ms | ${t.perSecond.toFixed(1)} / ${o.perSecond.toFixed(1)} | ${model.runs} |`,
      );
      console.error(`${model.name}: torch ${t.medianMs.toFixed(1)} ms, onnx-serve ${o.medianMs.toFixed(1)} ms`);
    }
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    const section = [
      START,
      '## PyTorch eager vs onnx-serve (`bench/torch-vs-onnx-serve.ts`)',
      '',
      `Input 1×3×224×224 float32, torchvision random weights (seed ${SEED}), the same input tensor on both sides, ` +
        `${threads} intra-op threads each (torch.set_num_threads / intraOpNumThreads), batch 1, one request at a time; ` +
        `${WARMUP} warmup runs. onnx-serve: the exported opset-${exported[0].ok ? exported[0].opset : '?'} model in one worker of its pool, ` +
        'graph optimization `all`, CPU provider, latency = round trip of `pool.run`. Throughput = requests per second, sequential.',
      '',
      '| model | torch eager median | onnx-serve median | speed-up | p90 torch / onnx-serve | req/s torch / onnx-serve | runs |',
      '|---|---|---|---|---|---|---|',
      ...rows,
      '',
      `Machine: ${cpu}, ${os.availableParallelism()} logical cores (${threads} usable), Node ${process.version}, ` +
        `onnxruntime-node 1.30, torch ${python.torchVersion} (${python.path}); load average at start ${os
          .loadavg()
          .map((l) => l.toFixed(2))
          .join(
            ', ',
          )} (2 cores shared with other engineers' test runs: a load above 2 slows both sides, torch's threads more, so read the ratios with that in mind). ` +
        `Regenerate: \`node --import tsx bench/torch-vs-onnx-serve.ts --write\`.`,
      END,
    ].join('\n');
    console.log(section);
    if (process.argv.includes('--write')) await writeSection(section);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Replaces this benchmark's section of RESULTS.md (other benchmarks own the rest of the file). */
async function writeSection(section: string): Promise<void> {
  const current = await readFile(RESULTS, 'utf8').catch(() => '# Benchmark results\n');
  const start = current.indexOf(START);
  const end = current.indexOf(END);
  const next =
    start >= 0 && end > start
      ? current.slice(0, start) + section + current.slice(end + END.length)
      : `${current.trimEnd()}\n\n${section}\n`;
  await writeFile(RESULTS, next);
}

await main();

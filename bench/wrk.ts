/**
 * Helpers of the small-request benchmarks (hot-path-profile.ts, hot-path-interleaved.ts): `wrk` (a C
 * load generator, Debian's `wrk`) posting one request body, a built server as a child process, and
 * `--cpu-prof` profiles summarised as CPU time per request by component and function.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EncodedRequest } from '../src/bench/wire.js';
import { DEPLOYED_NODE_FLAGS } from '../test/helpers/deployed-settings.js';
import { freePort, startChild, waitFor } from './child-server.js';

const run = promisify(execFile);
const say = (line = '') => process.stdout.write(`${line}\n`);

export interface WrkResult {
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

/** A wrk Lua script that POSTs `request` (its body read from a file) with its headers. */
export async function wrkScript(dir: string, name: string, request: EncodedRequest): Promise<string> {
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

export async function wrk(url: string, script: string, connections: number, durationS: number): Promise<WrkResult> {
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

/** A built server's arguments: `cli` serving on 127.0.0.1:`port`, gRPC off, warnings only; `extra` after `serve`. */
export function serveArgs(cli: string, port: number, extra: string[] = []): string[] {
  return [
    ...DEPLOYED_NODE_FLAGS,
    cli,
    'serve',
    ...extra,
    '--grpc-port',
    '0',
    '--log-level',
    'warn',
    '--port',
    String(port),
  ];
}

export async function withServer<T>(
  args: (port: number) => string[],
  ready: string,
  fn: (base: string, pid: number) => Promise<T>,
): Promise<T> {
  const port = await freePort();
  const child = startChild(args(port));
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`${base}${ready}`, child);
    return await fn(base, child.pid!);
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
}

/**
 * A built server under `node --cpu-prof` (worker threads inherit it and write their own profiles when
 * they end, at shutdown), warmed up, then `wrk` at `connections` on `path` for `seconds`; prints the
 * profiles' summary. Loading and warm-up are in the profiles too: ~150 ms against the measured load.
 */
export async function profileUnderLoad(options: {
  serve: (port: number) => string[];
  path: string;
  script: string;
  connections: number;
  seconds: number;
  profiles: string;
  load: () => string;
}): Promise<void> {
  const { serve, path: target, script, connections, seconds, profiles } = options;
  const served = await withServer(
    (port) => ['--cpu-prof', '--cpu-prof-dir', profiles, ...serve(port)],
    '/v2/health/ready',
    async (base) => {
      await wrk(`${base}${target}`, script, 4, 2);
      return wrk(`${base}${target}`, script, connections, seconds);
    },
  );
  await profileSummary(
    profiles,
    served.requests,
    `c${connections} under --cpu-prof (${served.perSecond.toFixed(0)} req/s, load ${options.load()})`,
  );
}

// ---- CPU time per thread ----

/** CPU time (ns, from /proc/<pid>/task/<tid>/schedstat) of each thread of a process, by thread id. */
export async function threadCpu(pid: number): Promise<Map<number, number>> {
  const times = new Map<number, number>();
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      times.set(Number(tid), Number((await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')).split(' ')[0]));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return times;
}

/**
 * CPU µs per request between two threadCpu snapshots: the main thread (its id is the pid) and the
 * rest of the process (worker threads with ORT's own threads, V8's GC helpers, libuv's pool).
 */
export function cpuPerRequest(
  pid: number,
  before: Map<number, number>,
  after: Map<number, number>,
  requests: number,
): { main: number; others: number } {
  let main = 0;
  let others = 0;
  for (const [tid, ns] of after) {
    const spent = (ns - (before.get(tid) ?? 0)) / 1000 / requests;
    if (tid === pid) main += spent;
    else others += spent;
  }
  return { main, others };
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

export async function profileSummary(dir: string, requests: number, label: string): Promise<void> {
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

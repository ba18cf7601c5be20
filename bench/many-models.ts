/**
 * Many small models on one server (issue 18): for 10, 100, … generated MLPs (three MatMul layers,
 * ~340 KB of FP32 weights each, default config), the time from spawning the built server to
 * /v2/health/ready, its RSS and thread count after ready, and the c=1 latency of one model while
 * the others idle and while another model is flooded (8 requests in flight). Loopback only, a few
 * seconds per cell; every figure is printed with the load average beside it.
 * Usage: npm run build && node --import tsx bench/many-models.ts [--counts 10,100] [--seconds 3]
 *        [--serve "--workers 2"]   (extra arguments for `onnx-serve serve`) [--cli path/to/cli/index.js]
 *        [--intra-op 1] [--instances 1]   (session.intra_op_threads and instances in every model's
 *                          config.yaml; default: not written, the server's defaults apply)
 *        [--budget 1GB]   (--model-memory-budget: then the cold and warm request latency, and one
 *                          request to every model with the RSS sampled throughout)
 *        [--fairness]     (adds a heavier model, floods it, and sets a small model's c=1 p50 rise
 *                          on its thread and on another against the flood's compute per run)
 *        [--flood-process]   (the flood from a process of its own, bench/flood-client.ts)
 *        [--heavy-instances 4]   (instances of the heavier model: more than --workers puts several
 *                          of its sessions on one thread, each with a run in flight)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { runLevel, type LevelResult } from '../src/bench/load-generator.js';
import { httpTarget, syntheticInputs } from '../src/bench/targets.js';
import { encodeRequest } from '../src/bench/wire.js';
import { parseByteSize } from '../src/repository/on-demand.js';
import { DEPLOYED_NODE_FLAGS } from '../test/helpers/deployed-settings.js';
import { MLP_LAYERS, mlpModel } from '../test/helpers/onnx-builder.js';

const flag = (name: string, fallback: string) => {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
};
const counts = flag('--counts', '10,100').split(',').map(Number);
const seconds = Number(flag('--seconds', '3'));
const budget = flag('--budget', '');
/** Flood a heavier model (`heavy`, added to the repository) and probe a small one on its thread and on another. */
const fairness = process.argv.includes('--fairness');
/** ~4 M multiply-adds a run: compute, not HTTP, dominates the flood (as in test/e2e/shared-workers.test.ts). */
const HEAVY_LAYERS = [64, 2048, 2048, 16];
const intraOp = flag('--intra-op', '');
const instances = flag('--instances', '');
const heavyInstances = flag('--heavy-instances', '');
/** The flood from a child process (bench/flood-client.ts): the probe's timing then shares no event loop with it. */
const floodProcess = process.argv.includes('--flood-process');
/** config.yaml for every model: only what the flags set, defaults otherwise. */
const configYaml =
  (instances === '' ? '' : `instances: ${instances}\n`) +
  (intraOp === '' ? '' : `session:\n  intra_op_threads: ${intraOp}\n`);
const serveArgs = [
  ...flag('--serve', '').split(' ').filter(Boolean),
  ...(budget === '' ? [] : ['--model-memory-budget', budget]),
];
const budgetBytes = budget === '' ? 0 : parseByteSize(budget);
const COLD_MODELS = 20;
/** The built CLI to run: another build (say, main's, copied aside) compares before and after. */
const cli = flag('--cli', 'dist/cli/index.js');
const READY_DEADLINE_MS = 600_000;
const FLOOD_CONCURRENCY = 8;
const LAYERS = MLP_LAYERS;

const load = () => os.loadavg()[0].toFixed(2);

async function writeRepository(count: number): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `many-models-${count}-`));
  for (let i = 0; i < count; i++) {
    await mkdir(path.join(dir, `mlp${i}`, '1'), { recursive: true });
    await writeFile(path.join(dir, `mlp${i}`, '1', 'model.onnx'), mlpModel(i));
    if (configYaml !== '') await writeFile(path.join(dir, `mlp${i}`, 'config.yaml'), configYaml);
  }
  if (fairness) {
    await mkdir(path.join(dir, 'heavy', '1'), { recursive: true });
    await writeFile(path.join(dir, 'heavy', '1', 'model.onnx'), mlpModel(count, HEAVY_LAYERS));
    const heavyYaml = heavyInstances === '' ? configYaml : configYaml.replace(/^instances: .*\n/m, '');
    const heavyConfig = (heavyInstances === '' ? '' : `instances: ${heavyInstances}\n`) + heavyYaml;
    if (heavyConfig !== '') await writeFile(path.join(dir, 'heavy', 'config.yaml'), heavyConfig);
  }
  return dir;
}

function status(pid: number): { rssMb: number; threads: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rssMb: Number(/VmRSS:\s+(\d+)/.exec(text)![1]) / 1024,
    threads: Number(/Threads:\s+(\d+)/.exec(text)![1]),
  };
}

async function startServer(repository: string): Promise<{ child: ChildProcess; url: string; readyMs: number }> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...DEPLOYED_NODE_FLAGS,
      cli,
      'serve',
      '--model-repository',
      repository,
      '--port',
      '0',
      '--grpc-port',
      '0',
      '--log-format',
      'json',
      '--log-level',
      'info',
      ...serveArgs,
    ],
    // As `npm start` and the container image run it: glibc hands large freed blocks (weights) back at once.
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' } },
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no URL in the log within the deadline')), READY_DEADLINE_MS);
    child.once('exit', (code) => reject(new Error(`the server exited with ${code} before listening`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const event = JSON.parse(line) as { url?: string };
      if (event.url !== undefined) {
        clearTimeout(timer);
        resolve(event.url);
      }
    });
  });
  while (performance.now() - started < READY_DEADLINE_MS) {
    const ready = await fetch(`${url}/v2/health/ready`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) return { child, url, readyMs: performance.now() - started };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGTERM');
  throw new Error(`not ready within ${READY_DEADLINE_MS} ms`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('close', resolve));
  child.kill('SIGTERM');
  await exited;
}

const request = encodeRequest(
  { inputs: syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [1, LAYERS[0]] }) },
  'binary',
);

const heavyRequest = encodeRequest(
  { inputs: syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [1, HEAVY_LAYERS[0]] }) },
  'binary',
);

async function c1(url: string, model: string): Promise<LevelResult> {
  const target = httpTarget(`${url}/v2/models/${model}/infer`, request, 1);
  try {
    return await runLevel(target.send, { concurrency: 1, items: 1, durationS: seconds, warmup: 20 });
  } finally {
    target.close();
  }
}

/** c=1 on `model` while `flooded` gets FLOOD_CONCURRENCY requests in flight; also the flood's throughput. */
async function c1WhileFlooded(url: string, model: string, flooded: string) {
  if (floodProcess) return c1WhileFloodedFromChild(url, model, flooded);
  const body = flooded === 'heavy' ? heavyRequest : request;
  const flood = httpTarget(`${url}/v2/models/${flooded}/infer`, body, FLOOD_CONCURRENCY);
  const floodRun = runLevel(flood.send, {
    concurrency: FLOOD_CONCURRENCY,
    items: 1,
    durationS: seconds + 1,
    warmup: FLOOD_CONCURRENCY,
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const probe = await c1(url, model);
  const floodResult = await floodRun;
  flood.close();
  return { probe, flood: floodResult };
}

/** As c1WhileFlooded, the flood sent by bench/flood-client.ts in a process of its own. */
async function c1WhileFloodedFromChild(url: string, model: string, flooded: string) {
  const width = flooded === 'heavy' ? HEAVY_LAYERS[0] : LAYERS[0];
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/flood-client.ts',
      `${url}/v2/models/${flooded}/infer`,
      String(width),
      String(FLOOD_CONCURRENCY),
      String(seconds + 1),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (what: string) => {
    const line = await lines.next();
    if (line.done === true) throw new Error(`bench/flood-client.ts ended before ${what}`);
    return line.value as string;
  };
  try {
    if ((await next('flooding')) !== 'flooding') throw new Error('bench/flood-client.ts did not start flooding');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const probe = await c1(url, model);
    const flood = JSON.parse(await next('its result')) as LevelResult;
    return { probe, flood };
  } finally {
    child.kill('SIGTERM');
  }
}

/**
 * The models to flood beside mlp0: one on mlp0's worker thread and one on another, as the metadata's
 * runtime.worker_threads tells; a build without shared threads (a thread per instance) has only "its own thread".
 */
async function floodTargets(url: string, count: number): Promise<Array<{ model: string; where: string }>> {
  const threadsOf = async (model: string) =>
    ((await (await fetch(`${url}/v2/models/${model}`)).json()) as { runtime: { worker_threads?: number[] } }).runtime
      .worker_threads;
  if (count < 2) return [];
  const home = await threadsOf('mlp0');
  if (home === undefined) return [{ model: 'mlp1', where: 'a thread of its own' }];
  const targets: Array<{ model: string; where: string }> = [];
  for (let i = 1; i < count && targets.length < 2; i++) {
    const threads = (await threadsOf(`mlp${i}`))!;
    const same = threads.some((t) => home.includes(t));
    const where = same ? "mlp0's thread" : 'another thread';
    if (!targets.some((t) => t.where === where)) targets.push({ model: `mlp${i}`, where });
  }
  return targets;
}

/**
 * Fairness as a figure: `heavy` flooded (8 in flight), and the c=1 p50 of a small model on heavy's
 * worker thread and of one on the other thread, each against its own idle p50. The compute share a
 * flood may take from the probe is one heavy run ahead of it in its thread's line (the flooded model
 * holds one place per instance), so the bound is the probe's idle p50 plus heavy's compute per run
 * (what the server reported while flooded); on another thread the line costs nothing, and what rises
 * there is the cores being shared (2 worker threads, the main thread and this load generator).
 */
async function fairnessCells(url: string, count: number): Promise<void> {
  const threadsOf = async (model: string) =>
    ((await (await fetch(`${url}/v2/models/${model}`)).json()) as { runtime: { worker_threads: number[] } }).runtime
      .worker_threads;
  const heavyThreads = await threadsOf('heavy');
  const probes: Array<{ model: string; where: string }> = [];
  for (let i = 0; i < count && probes.length < 2; i++) {
    const same = (await threadsOf(`mlp${i}`)).some((t) => heavyThreads.includes(t));
    const where = same ? "heavy's thread" : 'another thread';
    if (!probes.some((p) => p.where === where)) probes.push({ model: `mlp${i}`, where });
  }
  const alone = await c1(url, 'heavy');
  const heavy = ((await (await fetch(`${url}/v2/models/heavy`)).json()) as { runtime: Record<string, unknown> })
    .runtime;
  console.log(
    `  heavy alone c=1: p50 ${ms(alone.p50Ms)} ms, server compute ${ms(alone.serverComputeMs ?? NaN)} ms; ` +
      `${String(heavy.instances)} instance(s) × ${String(heavy.intra_op_threads)} intra-op thread(s) on worker thread(s) ${JSON.stringify(heavy.worker_threads)} (load ${load()})`,
  );
  for (const { model, where } of probes) {
    const idle = await c1(url, model);
    const { probe, flood } = await c1WhileFlooded(url, model, 'heavy');
    const share = flood.serverComputeMs ?? NaN;
    const rise = probe.p50Ms - idle.p50Ms;
    console.log(
      `  fairness ${model} (${where}): c=1 p50 idle ${ms(idle.p50Ms)} ms, while heavy flooded ${ms(probe.p50Ms)} ms ` +
        `(+${ms(rise)} ms, ${(probe.p50Ms / idle.p50Ms).toFixed(2)}×; mean ${ms(idle.meanMs)} → ${ms(probe.meanMs)} ms, of which server queue ${ms(idle.serverQueueMs ?? NaN)} → ${ms(probe.serverQueueMs ?? NaN)} ms); ` +
        `heavy's compute per run ${ms(share)} ms ` +
        `(mean batch ${(flood.batchSize ?? NaN).toFixed(1)}, ${flood.throughput.toFixed(0)} infer/s): rise ${rise <= share ? 'within' : 'ABOVE'} ` +
        `its compute share; errors ${probe.errors + flood.errors} (load ${load()})`,
    );
  }
}

/** One request, timed, outside the load generator: a cold request is one of a kind. */
async function once(url: string, model: string): Promise<{ ms: number; ok: boolean; error?: string }> {
  const target = httpTarget(`${url}/v2/models/${model}/infer`, request, 1);
  const started = performance.now();
  try {
    await target.send();
    return { ms: performance.now() - started, ok: true };
  } catch (error) {
    return { ms: performance.now() - started, ok: false, error: (error as Error).message };
  } finally {
    target.close();
  }
}

/** With a budget: cold requests (load + warmup + run), warm c=1, then one request to every model with RSS sampled. */
async function budgetCells(url: string, pid: number, count: number, base: { rssMb: number }) {
  // Sampled from ready to the end: cold loads, warm requests and the pass over every model.
  let peak = status(pid).rssMb;
  const sampler = setInterval(() => (peak = Math.max(peak, status(pid).rssMb)), 20);
  try {
    await budgetRequests(url, pid, count);
  } finally {
    clearInterval(sampler);
  }
  const after = status(pid);
  const bound = base.rssMb + budgetBytes / 2 ** 20;
  console.log(
    `  RSS peak ${peak.toFixed(0)} MB = base ${base.rssMb.toFixed(0)} + ${(peak - base.rssMb).toFixed(0)} MB; ` +
      `budget ${budget} + base = ${bound.toFixed(0)} MB: ${peak <= bound ? 'within' : 'OVER'}; after ${after.rssMb.toFixed(0)} MB, ` +
      `${after.threads} threads (load ${load()})`,
  );
}

async function budgetRequests(url: string, pid: number, count: number) {
  const cold: number[] = [];
  for (let i = 0; i < Math.min(COLD_MODELS, count); i++) {
    const answer = await once(url, `mlp${i}`);
    if (!answer.ok) throw new Error(`cold request to mlp${i} failed: ${answer.error}`);
    cold.push(answer.ms);
  }
  cold.sort((a, b) => a - b);
  console.log(
    `  cold request (load + warmup + run), ${cold.length} models one after another: p50 ${ms(cold[Math.floor(cold.length / 2)])} ms, ` +
      `max ${ms(cold[cold.length - 1])} ms (load ${load()})`,
  );
  const warm = await c1(url, 'mlp0');
  console.log(`  warm c=1 mlp0: p50 ${ms(warm.p50Ms)} ms, p99 ${ms(warm.p99Ms)} ms (load ${load()})`);
  const started = performance.now();
  let failed = 0;
  let firstError: string | undefined;
  for (let i = 0; i < count; i++) {
    const answer = await once(url, `mlp${i}`);
    if (!answer.ok) {
      failed++;
      firstError ??= `mlp${i}: ${answer.error}`;
    }
  }
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const total = (name: string) =>
    [...metrics.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
  console.log(
    `  one request to each of the ${count} models: ${((performance.now() - started) / 1000).toFixed(1)} s, ` +
      `${count - failed} answered, ${failed} failed${firstError === undefined ? '' : ` (${firstError})`}; ` +
      `loads ${total('onnx_serve_model_loads_total')}, evictions ${total('onnx_serve_model_evictions_total')}, ` +
      `${status(pid).rssMb.toFixed(0)} MB (load ${load()})`,
  );
}

const ms = (value: number) => value.toFixed(2);

if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
console.log(
  `node ${process.version}, ${os.cpus().length} CPUs, ${cli} serve ${serveArgs.join(' ') || '(defaults)'}, ` +
    `config.yaml ${JSON.stringify(configYaml || '(none)')}, MLP ${LAYERS.join('-')} (${((LAYERS.slice(1).reduce((sum, w, i) => sum + LAYERS[i] * w, 0) * 4) / 1024).toFixed(0)} KB of weights), load average ${load()}`,
);
for (const count of counts) {
  const repository = await writeRepository(count);
  let child: ChildProcess | undefined;
  try {
    const server = await startServer(repository);
    child = server.child;
    const after = status(child.pid!);
    console.log(
      `${count} models: ready after ${(server.readyMs / 1000).toFixed(2)} s, RSS ${after.rssMb.toFixed(0)} MB, ` +
        `${after.threads} threads (load ${load()})`,
    );
    if (budget !== '') {
      await budgetCells(server.url, child.pid!, count, after);
      continue;
    }
    if (fairness) {
      await fairnessCells(server.url, count);
      continue;
    }
    const idle = await c1(server.url, 'mlp0');
    console.log(
      `  c=1 mlp0, others idle: p50 ${ms(idle.p50Ms)} ms, p99 ${ms(idle.p99Ms)} ms, ${idle.throughput.toFixed(0)} infer/s (load ${load()})`,
    );
    for (const { model: flooded, where } of await floodTargets(server.url, count)) {
      const { probe, flood } = await c1WhileFlooded(server.url, 'mlp0', flooded);
      console.log(
        `  c=1 mlp0 while ${flooded} (${where}) flooded (c=${FLOOD_CONCURRENCY}): p50 ${ms(probe.p50Ms)} ms, p99 ${ms(probe.p99Ms)} ms ` +
          `(${(probe.p50Ms / idle.p50Ms).toFixed(2)}× idle); flood ${flood.throughput.toFixed(0)} infer/s, ` +
          `p50 ${ms(flood.p50Ms)} ms, errors ${flood.errors + probe.errors} (load ${load()})`,
      );
    }
    const busy = status(child.pid!);
    console.log(`  after the flood: RSS ${busy.rssMb.toFixed(0)} MB, ${busy.threads} threads (load ${load()})`);
  } finally {
    if (child !== undefined) await stop(child);
    await rm(repository, { recursive: true, force: true });
  }
}

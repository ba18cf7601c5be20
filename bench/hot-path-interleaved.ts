/**
 * Two builds side by side on text-orientation's small binary request (1×3×48×192 FP32, 108 KB body):
 * this checkout's `dist/` and a baseline build (ONNX_SERVE_BASELINE_CLI, e.g. main's, built from
 * `git archive main` in test-artifacts/), each serving a repository that holds only its own
 * checkout's text-orientation (models/text-orientation, config.yaml included), both started before
 * the first cell. `wrk` cells at c=1 and c=16 alternate between the two in the
 * order A B B A per round, so a neighbour's load falls on both alike (run-to-run spread on this
 * machine is ±20 %: one cell each says nothing). Each cell also reports the server's CPU time per
 * request, the main thread apart from the others (worker threads with ONNX Runtime's, V8's helpers),
 * read from /proc/<pid>/task/<tid>/schedstat around the cell: CPU time, unlike a profile's sampled wall
 * time, does not count the moments a thread waits for a core, and moves less with the neighbours.
 *
 * Usage (`npm run build` first, in both checkouts):
 *   ONNX_SERVE_BASELINE_CLI=test-artifacts/base/dist/cli/index.js \
 *     node --import tsx bench/hot-path-interleaved.ts [seconds per cell, default 5] [rounds, default 3]
 *   node --import tsx bench/hot-path-interleaved.ts --profile [seconds, default 6]
 * --profile: this checkout's build alone under `node --cpu-prof` (worker threads included), c=1 and
 * c=16, summarised per request by component and function. Prints markdown for bench/RESULTS.md.
 */
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { syntheticInputs } from '../src/bench/targets.js';
import { encodeRequest } from '../src/bench/wire.js';
import {
  cpuPerRequest,
  profileUnderLoad,
  serveArgs,
  threadCpu,
  withServer,
  wrk,
  wrkScript,
  type WrkResult,
} from './wrk.js';

const MODEL = 'text-orientation';
const INFER = `/v2/models/${MODEL}/infer`;
const profile = process.argv[2] === '--profile';
const seconds = Number((profile ? process.argv[3] : process.argv[2]) ?? (profile ? 6 : 5));
const rounds = Number(process.argv[3] ?? 3);
const baseline = process.env.ONNX_SERVE_BASELINE_CLI;
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const say = (line = '') => process.stdout.write(`${line}\n`);

// Inside the checkout: the model's source package is looked up in node_modules from its folder up.
await mkdir('test-artifacts', { recursive: true });
const dir = await mkdtemp(path.resolve('test-artifacts', 'interleaved-'));
try {
  // Each build serves its own checkout's text-orientation (its config.yaml may differ).
  const repositoryOf = async (cli: string) => {
    const checkout = path.resolve(path.dirname(cli), '..', '..');
    const repository = await mkdtemp(path.join(dir, 'models-'));
    await cp(path.join(checkout, 'models', MODEL), path.join(repository, MODEL), { recursive: true });
    return repository;
  };
  const body = encodeRequest(
    { inputs: syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [1, 3, 48, 192] }) },
    'binary',
  );
  const script = await wrkScript(dir, 'binary', body);
  const serve = async (cli: string) => {
    const repository = await repositoryOf(cli);
    return (port: number) => serveArgs(cli, port, ['--model-repository', repository]);
  };
  say(`Run ${new Date().toISOString()}, ${seconds} s per cell, load average ${load()} at the start.`);
  say();
  if (profile) {
    const serveProfiled = await serve('dist/cli/index.js');
    for (const c of [1, 16]) {
      await profileUnderLoad({
        serve: serveProfiled,
        path: INFER,
        script,
        connections: c,
        seconds,
        profiles: path.join(dir, `profiles-c${c}`),
        load,
      });
    }
  } else {
    if (baseline === undefined)
      throw new Error('set ONNX_SERVE_BASELINE_CLI to the baseline build (its dist/cli/index.js)');
    const cells: Array<{ build: string; c: number; result: WrkResult; cpu: { main: number; others: number } }> = [];
    const [baseArgs, branchArgs] = [await serve(baseline), await serve('dist/cli/index.js')];
    await withServer(baseArgs, '/v2/health/ready', (baseUrl, basePid) =>
      withServer(branchArgs, '/v2/health/ready', async (branchUrl, branchPid) => {
        const urls = { base: `${baseUrl}${INFER}`, branch: `${branchUrl}${INFER}` };
        const pids = { base: basePid, branch: branchPid };
        for (const url of Object.values(urls)) await wrk(url, script, 4, 2); // warm
        say(
          '| round | build | load | req/s | p50 ms | p99 ms | errors | main thread CPU µs/request | other threads CPU µs/request | load average |',
        );
        say('|---:|---|---|---:|---:|---:|---:|---:|---:|---|');
        for (let round = 1; round <= rounds; round++) {
          for (const c of [1, 16]) {
            // A B B A, then B A A B: each build goes first in every other round.
            const order = round % 2 === 1 ? (['base', 'branch'] as const) : (['branch', 'base'] as const);
            for (const build of [...order, ...[...order].reverse()]) {
              const before = await threadCpu(pids[build]);
              const result = await wrk(urls[build], script, c, seconds);
              const cpu = cpuPerRequest(pids[build], before, await threadCpu(pids[build]), result.requests);
              cells.push({ build, c, result, cpu });
              say(
                `| ${round} | ${build} | c${c} | ${result.perSecond.toFixed(0)} | ${result.p50.toFixed(2)} | ${result.p99.toFixed(2)} | ${result.errors} | ${cpu.main.toFixed(0)} | ${cpu.others.toFixed(0)} | ${load()} |`,
              );
            }
          }
        }
      }),
    );
    say();
    say(
      '| build | load | cells | mean req/s | median p50 ms | mean main thread CPU µs/request | mean other threads CPU µs/request |',
    );
    say('|---|---|---:|---:|---:|---:|---:|');
    for (const c of [1, 16]) {
      for (const build of ['base', 'branch']) {
        const mine = cells.filter((cell) => cell.build === build && cell.c === c);
        const mean = (pick: (cell: (typeof mine)[number]) => number) =>
          mine.reduce((sum, cell) => sum + pick(cell), 0) / mine.length;
        const p50s = mine.map((cell) => cell.result.p50).sort((a, b) => a - b);
        const median = (p50s[(p50s.length - 1) >> 1] + p50s[p50s.length >> 1]) / 2;
        say(
          `| ${build} | c${c} | ${mine.length} | ${mean((cell) => cell.result.perSecond).toFixed(0)} | ${median.toFixed(2)} | ${mean((cell) => cell.cpu.main).toFixed(0)} | ${mean((cell) => cell.cpu.others).toFixed(0)} |`,
        );
      }
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

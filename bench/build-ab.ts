/**
 * Two builds of onnx-serve side by side on one model of the default repository: binary requests at
 * c=1 and c=16, the builds taken in turns (A, B, A, B, …) so that both see the same machine. For a
 * change that must not cost single-model latency or throughput (`npm run bench` runs one build and
 * rewrites RESULTS.md; its figures move more between runs than such a change would).
 * Loopback only, a few seconds per cell; the load average beside every figure.
 * Usage: npm run build && node --import tsx bench/build-ab.ts --a path/to/other/dist/cli/index.js
 *        [--b dist/cli/index.js] [--model text-orientation|text-recognizer] [--rounds 3] [--seconds 3]
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runLevel } from '../src/bench/load-generator.js';
import { httpTarget, syntheticInputs } from '../src/bench/targets.js';
import { encodeRequest } from '../src/bench/wire.js';
import { freePort, startServerChild, waitFor } from './child-server.js';

const flag = (name: string, fallback: string) => {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
};
const SHAPES: Record<string, number[]> = {
  'text-orientation': [1, 3, 48, 192],
  'text-recognizer': [1, 3, 48, 320],
};
const model = flag('--model', 'text-orientation');
const rounds = Number(flag('--rounds', '3'));
const seconds = Number(flag('--seconds', '3'));
const builds = { A: flag('--a', ''), B: flag('--b', 'dist/cli/index.js') };
if (SHAPES[model] === undefined)
  throw new Error(`--model must be one of ${Object.keys(SHAPES).join(', ')}, got ${model}`);
for (const [name, cli] of Object.entries(builds)) {
  if (!existsSync(cli)) throw new Error(`--${name.toLowerCase()} ${cli || '(missing)'}: no such built CLI`);
}
const load = () => os.loadavg()[0].toFixed(2);
const body = encodeRequest(
  { inputs: syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: SHAPES[model] }) },
  'binary',
);

const servers: Array<{ name: string; cli: string; url: string; child: ChildProcess }> = [];
try {
  for (const [name, cli] of Object.entries(builds)) {
    const port = await freePort();
    // Both read the worktree's repository: a build copied aside has no models/ of its own.
    const child = startServerChild([
      cli,
      'serve',
      '--model-repository',
      path.resolve('models'),
      '--port',
      String(port),
      '--grpc-port',
      '0',
      '--log-level',
      'warn',
    ]);
    servers.push({ name, cli, url: `http://127.0.0.1:${port}`, child });
    await waitFor(`http://127.0.0.1:${port}/v2/health/ready`, child);
  }
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs, ${model} ${SHAPES[model].join('×')} FP32 binary, ` +
      `${seconds} s a cell; ${servers.map((s) => `${s.name} = ${s.cli}`).join(', ')} (load ${load()})`,
  );
  for (let round = 1; round <= rounds; round++) {
    for (const server of servers) {
      for (const concurrency of [1, 16]) {
        const target = httpTarget(`${server.url}/v2/models/${model}/infer`, body, concurrency);
        try {
          const r = await runLevel(target.send, { concurrency, items: 1, durationS: seconds, warmup: 2 * concurrency });
          console.log(
            `round ${round} ${server.name} c${concurrency}: ${r.throughput.toFixed(1)} infer/s, p50 ${r.p50Ms.toFixed(2)} ms, ` +
              `p99 ${r.p99Ms.toFixed(2)} ms, mean batch ${r.batchSize?.toFixed(1) ?? '-'}, errors ${r.errors} (load ${load()})`,
          );
        } finally {
          target.close();
        }
      }
    }
  }
} finally {
  for (const { child } of servers) child.kill('SIGTERM');
}

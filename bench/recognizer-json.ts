/**
 * JSON throughput on the text-recognizer, whose answer is 40×6625 = 265,000 probabilities: how fast
 * onnx-serve answers when every answer is a big JSON array of floats (issue 16's "no regression in
 * JSON throughput on the recognizer"). Two builds side by side, interleaved round by round, so that a
 * busy neighbour costs both alike: this checkout's `dist/` and, when ONNX_SERVE_BASELINE_CLI names
 * one, another build's `dist/cli/index.js` (say main's, built in a folder of its own). Each server runs
 * in its own process on a repository holding only text-recognizer (its default config); every request
 * is the same JSON body (a synthetic 1×3×48×320 line, encoded by this checkout), and the client reads
 * each answer whole (never parses it).
 * Usage: npm run build && [ONNX_SERVE_BASELINE_CLI=…] node --import tsx bench/recognizer-json.ts [seconds per cell, default 6] [rounds, default 2]
 */
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runLevel, type LevelResult } from '../src/bench/load-generator.js';
import { httpTarget, syntheticInputs } from '../src/bench/targets.js';
import { encodeRequest } from '../src/bench/wire.js';
import { freePort, startServerChild, waitFor } from './child-server.js';

const seconds = Number(process.argv[2] ?? 6);
const rounds = Number(process.argv[3] ?? 2);
const builds: Array<{ label: string; cli: string }> = [{ label: 'this checkout', cli: 'dist/cli/index.js' }];
if (process.env.ONNX_SERVE_BASELINE_CLI !== undefined) {
  builds.unshift({ label: 'baseline', cli: process.env.ONNX_SERVE_BASELINE_CLI });
}
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

// Inside the checkout: the config's `source: package` is looked up in node_modules from the repository up.
await mkdir('test-artifacts', { recursive: true });
const repository = await mkdtemp(path.resolve('test-artifacts', 'recognizer-json-'));
await cp('models/text-recognizer', path.join(repository, 'text-recognizer'), { recursive: true });
const [input] = syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [1, 3, 48, 320] });
const request = encodeRequest({ inputs: [input] }, 'json');

const servers = await Promise.all(
  builds.map(async (build) => {
    const port = await freePort();
    const args = [build.cli, 'serve', '--port', String(port), '--grpc-port', '0', '--log-level', 'warn'];
    const child = startServerChild([...args, '--model-repository', repository]);
    return { ...build, child, url: `http://127.0.0.1:${port}` };
  }),
);
const rows: string[] = [];
try {
  for (const server of servers) await waitFor(`${server.url}/v2/models/text-recognizer/ready`, server.child);
  const answerBytes = new Map<string, number>();
  for (const server of servers) {
    const response = await fetch(`${server.url}/v2/models/text-recognizer/infer`, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
    });
    if (response.status !== 200) throw new Error(`${server.label}: HTTP ${response.status}`);
    answerBytes.set(server.label, (await response.arrayBuffer()).byteLength);
  }
  const cell = async (url: string, concurrency: number): Promise<LevelResult> => {
    const target = httpTarget(`${url}/v2/models/text-recognizer/infer`, request, concurrency);
    try {
      return await runLevel(target.send, { concurrency, items: 1, durationS: seconds, warmup: concurrency });
    } finally {
      target.close();
    }
  };
  for (let round = 1; round <= rounds; round++) {
    for (const concurrency of [1, 16]) {
      for (const server of servers) {
        const before = load();
        const result = await cell(server.url, concurrency);
        rows.push(
          `| ${round} | ${server.label} | c${concurrency} | ${result.throughput.toFixed(1)} | ${result.p50Ms.toFixed(1)} | ` +
            `${result.p99Ms.toFixed(1)} | ${(result.batchSize ?? 1).toFixed(1)} | ${result.errors} | ` +
            `${((answerBytes.get(server.label) ?? 0) / 1024).toFixed(0)} KiB | ${before} |`,
        );
        process.stderr.write(`${rows.at(-1)}\n`);
      }
    }
  }
} finally {
  for (const server of servers) server.child.kill('SIGTERM');
  await Promise.all(
    servers.map(
      (server) =>
        new Promise((resolve) =>
          server.child.exitCode === null ? server.child.once('exit', resolve) : resolve(undefined),
        ),
    ),
  );
  await rm(repository, { recursive: true, force: true });
}
process.stdout.write(
  `text-recognizer, JSON in and out (request ${(request.body.length / 1024).toFixed(0)} KiB), ${seconds} s per cell\n\n` +
    '| round | build | load | infer/s | p50 ms | p99 ms | mean batch | errors | answer | load average before |\n' +
    '| ----: | ----- | ---- | ------: | -----: | -----: | ---------: | -----: | -----: | ------------------- |\n' +
    `${rows.join('\n')}\n`,
);

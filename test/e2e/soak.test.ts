/**
 * 100,000 inferences through the worker pool of a served model: the process's resident memory
 * (main thread, worker threads and onnxruntime's native allocations alike) grows less than 5% after
 * warm-up. A leak of even a few hundred bytes per request would show.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { RunningServer } from '../../src/server/start.js';
import { clsRepository } from '../helpers/repository.js';
import { startTestServer } from '../helpers/server.js';

// The resident size steps up at random moments early on (new allocator arenas, heaps sized to the
// load): on Node 24 after 10,000 inferences a later step of 12-32 MiB failed 1 run in 4-6 alone and
// 2 full suites of 2; after 50,000 the 4 runs tried grew −7.9 to −0.2 %.
const WARMUP = 50_000;
const SOAK = 100_000;
const CONCURRENCY = 4;
const SHAPE = [1, 3, 48, 32];

let dir: string;
let server: RunningServer;

before(async () => {
  dir = await clsRepository(SHAPE, 'instances: 2');
  server = await startTestServer({ modelRepository: dir });
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

// Garbage not yet collected is not a leak: both measurements follow a full collection.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

async function infer(count: number): Promise<void> {
  const pool = server.registry.resolveReady('cls').pool;
  let next = 0;
  const client = async () => {
    while (next++ < count) {
      const data = new Float32Array(SHAPE.reduce((a, b) => a * b, 1)).fill(0.5);
      const { outputs } = await pool.run([{ name: 'x', datatype: 'FP32', shape: SHAPE, data }]);
      assert.deepEqual(outputs[0].shape, [1, 2]);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
}

/**
 * Resident memory less the main thread's young generation. V8 resizes that space with the allocation
 * rate (Node 24 grows it from 8 to 64 MiB and more under this load, and keeps it after a full
 * collection), which is capacity, not a leak; everything else (old space, native memory, the
 * workers) stays in the figure.
 */
function residentBytes(): number {
  const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  return process.memoryUsage.rss() - (young?.space_size ?? 0);
}

/**
 * The median of five readings, each after a fifth of `count` inferences and a full collection.
 * Between collections the resident size moves by up to ~15 % on Node 24 in both directions, with no
 * trend: readings every 50,000 inferences of one run were 240.8, 238.4, 217.5, 235.3 MiB, and a
 * lowest reading of 189 MiB among others at 215-217 made a comparison of single readings (or of
 * lowest readings) fail either way. A leak moves every reading, so the medians are compared.
 */
async function residentMedianAfter(count: number): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 5; i++) {
    await infer(count / 5);
    collectGarbage();
    readings.push(residentBytes());
  }
  return readings.sort((a, b) => a - b)[2];
}

it(`${SOAK} inferences: RSS grows less than 5% after warm-up`, async () => {
  await infer(WARMUP);
  const before = await residentMedianAfter(WARMUP);
  const after = await residentMedianAfter(SOAK);
  const growth = (after - before) / before;
  const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
  console.log(
    `soak: ${SOAK} inferences, RSS less young generation ${mib(before)} MiB → ${mib(after)} MiB (${(growth * 100).toFixed(2)}%)`,
  );
  assert.ok(
    growth < 0.05,
    `RSS grew ${(growth * 100).toFixed(2)}% (${mib(before)} → ${mib(after)} MiB); the limit is 5%`,
  );
});

/**
 * A worker thread dies under load: the requests it held fail with 500 naming the cause, every other
 * request is answered 200, a warmed-up replacement takes over; a crash loop marks the model unavailable.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, it } from 'node:test';
import type { Worker } from 'node:worker_threads';
import type { RunningServer } from '../../src/server/start.js';
import { jsonRequest, LoadGenerator } from '../helpers/load.js';
import { clsRepository } from '../helpers/repository.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';
import { waitUntil, within } from '../helpers/wait.js';

const SHAPE = [1, 3, 48, 192];
const CONCURRENCY = 4;

let dir: string;
let server: RunningServer;

before(async () => {
  // One instance: while it is replaced, requests wait for the replacement instead of finding none.
  dir = await clsRepository(SHAPE);
  server = await startTestServer({ modelRepository: dir });
});

after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const pool = () => server.registry.resolveReady('cls').pool;

const STOPPED = 'instance 0 of cls:1 stopped during inference: its thread exited with code 1';

/**
 * Stops the instance's thread as a crash would, with `held` requests posted to it as it dies, and
 * waits for the pool to replace it. The thread is stopped between two runs: onnxruntime-node aborts
 * the whole process when a thread is terminated in the middle of session.run.
 */
async function crashInstance(held: number): Promise<PromiseSettledResult<unknown>[]> {
  // Checked on every turn of the event loop: under load the gap between two runs is short.
  const idleBy = performance.now() + 30_000;
  while (pool().inFlight > 0) {
    if (performance.now() > idleBy) assert.fail('gave up after 30000 ms waiting for the instance to be idle');
    await new Promise((resolve) => setImmediate(resolve));
  }
  const [thread] = pool().threads;
  const stopping = within('the instance thread to stop', thread.terminate());
  const size = SHAPE.reduce((a, b) => a * b, 1);
  const runs = Array.from({ length: held }, () =>
    pool().run([{ name: 'x', datatype: 'FP32', shape: SHAPE, data: new Float32Array(size) }]),
  );
  await stopping;
  const settled = await within('the runs the stopped instance held to settle', Promise.allSettled(runs));
  await waitUntil(
    'the pool to replace the stopped instance (or the model to leave READY)',
    () => server.registry.resolve('cls').state !== 'READY' || isReplaced(thread),
    { intervalMs: 20 },
  );
  return settled;
}

const isReplaced = (old: Worker) => pool().threads.length === 1 && pool().threads[0] !== old;

it('kill a worker under load: no request lost, only the ones it held fail, with the cause', async () => {
  const load = new LoadGenerator(jsonRequest(`${server.url}/v2/models/cls/infer`, 'x', SHAPE), {
    concurrency: CONCURRENCY,
    maxRequests: 3000,
  });
  await load.answered(50);
  const held = await crashInstance(3);
  for (const run of held) assert.deepEqual(run.status === 'rejected' && (run.reason as Error).message, STOPPED);
  const afterCrash = load.outcomes.length;
  await load.answered(afterCrash + 50);
  const outcomes = await load.stop();

  const failed = outcomes.filter((o) => o.status !== 200);
  console.log(`sent ${outcomes.length}, 200: ${outcomes.length - failed.length}, 500: ${failed.length}, lost: 0`);
  for (const o of outcomes) assert.ok(o.doneAt > 0 && o.error === undefined, `unanswered: ${JSON.stringify(o)}`);
  for (const o of failed) {
    assert.deepEqual([o.status, o.body], [500, { error: STOPPED }]);
  }
  // Only requests the dying instance held fail: at most one per client.
  assert.ok(failed.length <= CONCURRENCY, `${failed.length} failed of ${CONCURRENCY} clients`);
  assert.ok(
    outcomes.slice(afterCrash).every((o) => o.status === 200),
    'requests after the replacement succeed',
  );
  assert.equal((await getJson(`${server.url}/v2/models/cls/ready`)).status, 200);
});

it('a crash loop marks the model unavailable with the reason instead of replacing forever', async () => {
  // The first test's crash counts too: four more make five within the minute.
  for (let i = 0; i < 4; i++) await crashInstance(0);
  const ready = await getJson(`${server.url}/v2/models/cls/ready`);
  const reason =
    'crash loop: 5 instance crashes within 60 s (limit 5); instances are no longer replaced; last cause: its thread exited with code 1';
  assert.deepEqual(
    [ready.status, ready.body],
    [503, { name: 'cls', version: '1', ready: false, state: 'UNAVAILABLE', reason }],
  );
  const infer = await postJson(`${server.url}/v2/models/cls/infer`, jsonRequest('', 'x', SHAPE).body);
  assert.deepEqual(
    [infer.status, infer.body],
    [503, { error: `Request for unknown model: 'cls' version 1 is not at ready state; it is unavailable: ${reason}` }],
  );
});

/**
 * Worker threads run below the main thread (src/runtime/thread-priority.ts): the inference workers,
 * the ONNX Runtime threads they start with a session and the JSON codec threads take the nice value
 * asked (5 by default) while the main thread keeps its own, and `workerNice: 0` leaves every thread
 * where it was. Read from /proc, as the scheduler sees them.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_WORKER_NICE, MAX_NICE } from '../../src/runtime/thread-priority.js';
import type { RunningServer, ServeOptions } from '../../src/server/start.js';
import { MLP_LAYERS, mlpModel, writeRepositoryModel } from '../helpers/onnx-builder.js';
import { postJson, startTestServer } from '../helpers/server.js';

const INTRA_OP_THREADS = 3;
const ROW = Array.from({ length: MLP_LAYERS[0] }, (_, i) => ((i % 5) - 2) / 4);

/** Nice value of each thread of this process, by thread id. */
function threadNices(): Map<number, number> {
  const nices = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // The thread ended while listed.
    }
    // Fields after the command name, which sits in parentheses and may hold spaces: nice is field 19.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    nices.set(Number(tid), Number(fields[19 - 3]));
  }
  return nices;
}

/** The threads that started since `before` and their nice values. */
function newThreads(before: Map<number, number>): number[] {
  return [...threadNices()].filter(([tid]) => !before.has(tid)).map(([, nice]) => nice);
}

describe('worker threads run below the main thread', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'thread-priority-'));
    // onnxruntime starts INTRA_OP_THREADS - 1 threads of its own for the session, from the worker.
    await writeRepositoryModel(
      dir,
      'mlp',
      mlpModel(0),
      `instances: 1\nsession:\n  intra_op_threads: ${INTRA_OP_THREADS}\n`,
    );
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Starts a server, then sends one JSON request through a codec thread: the nice values of the
   * threads that started with the server (its worker, onnxruntime's threads) and of those after.
   */
  async function threadsOfServer(
    options: ServeOptions,
  ): Promise<{ server: RunningServer; loaded: number[]; answered: number[] }> {
    const known = threadNices();
    const server = await startTestServer({
      modelRepository: dir,
      workers: 1,
      // Every JSON body goes to a codec thread.
      jsonWorkers: { minBodyBytes: 0 },
      ...options,
    });
    const loaded = newThreads(known);
    const response = await postJson(`${server.url}/v2/models/mlp/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, ROW.length], data: ROW }],
    });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return { server, loaded, answered: newThreads(known) };
  }

  // The test runner itself may run under `nice`: the workers go that far below wherever it is.
  const mainNice = () => threadNices().get(process.pid)!;

  it('the inference worker, its onnxruntime threads and the JSON codec thread take the default nice value', async () => {
    const main = mainNice();
    const expected = Math.min(MAX_NICE, main + DEFAULT_WORKER_NICE);
    const { server, loaded, answered } = await threadsOfServer({});
    try {
      assert.equal(server.registry.workers.nice, DEFAULT_WORKER_NICE);
      const lowered = (nices: number[]) => nices.filter((nice) => nice === expected).length;
      // The inference worker and onnxruntime's intra-op threads, started from it.
      assert.ok(lowered(loaded) >= INTRA_OP_THREADS, `loaded: [${loaded}]`);
      // The codec thread, started from the main thread for the JSON request.
      assert.ok(lowered(answered) > lowered(loaded), `loaded: [${loaded}], answered: [${answered}]`);
      assert.equal(mainNice(), main, 'the main thread keeps its priority');
    } finally {
      await server.close();
    }
  });

  it('workerNice 0 leaves every thread at the main thread priority', async () => {
    const main = mainNice();
    const { server, answered } = await threadsOfServer({ workerNice: 0 });
    try {
      assert.ok(answered.length >= INTRA_OP_THREADS + 1, `new threads: [${answered}]`);
      assert.deepEqual(
        answered.filter((nice) => nice !== main),
        [],
      );
    } finally {
      await server.close();
    }
  });

  it('refuses a nice value out of 0-19', async () => {
    await assert.rejects(
      startTestServer({ modelRepository: dir, workerNice: 20 }),
      /worker nice must be an integer from 0 to 19, got 20/,
    );
  });
});

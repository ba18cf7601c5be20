/**
 * Many models share the server-wide worker threads: six models on two threads answer with their own
 * weights, a model's instances spread across threads, an onnxruntime error in one session fails that
 * request only, and a thread that dies takes only what it held: every session on it is reloaded.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { modelMetadata } from '../../src/core/model-metadata.js';
import { ModelRegistry } from '../../src/repository/model-registry.js';
import { scanRepository } from '../../src/repository/scan.js';
import type { CpuBudget } from '../../src/runtime/cpu.js';
import type { RunningServer } from '../../src/server/start.js';
import { MLP_LAYERS, mlpModel, mlpReference, writeRepositoryModel } from '../helpers/onnx-builder.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';
import { waitUntil, within } from '../helpers/wait.js';

const MODELS = 6;
const ROW = Array.from({ length: MLP_LAYERS[0] }, (_, i) => ((i % 7) - 3) / 4);
const SMALL = 'instances: 1\nsession:\n  intra_op_threads: 1\nwarmup:\n  runs: 1\n';

async function repository(configOf: (index: number) => string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shared-workers-'));
  for (let i = 0; i < MODELS; i++) await writeRepositoryModel(dir, `mlp${i}`, mlpModel(i), configOf(i));
  return dir;
}

function inferBody(row: readonly number[] = ROW) {
  return { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, row.length], data: row }] };
}

/** Each model answers with its own weights: the request ran on its own session, whatever thread holds it. */
async function assertAnswersOwnWeights(server: RunningServer, index: number): Promise<void> {
  const response = await postJson(`${server.url}/v2/models/mlp${index}/infer`, inferBody());
  assert.equal(response.status, 200, JSON.stringify(response.body));
  const y = (response.body as { outputs: { data: number[] }[] }).outputs[0].data;
  const expected = mlpReference(index, ROW);
  assert.equal(y.length, expected.length);
  y.forEach((value, j) =>
    assert.ok(Math.abs(value - expected[j]) < 1e-3, `mlp${index} y[${j}] ${value} vs ${expected[j]}`),
  );
}

describe('six models on two worker threads', () => {
  let dir: string;
  let server: RunningServer;

  before(async () => {
    // mlp0 has two instances: its copies go to different threads.
    dir = await repository((i) => (i === 0 ? SMALL.replace('instances: 1', 'instances: 2') : SMALL));
    server = await startTestServer({ modelRepository: dir, workers: 2 });
  });

  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('hosts every session on the two threads and answers each model with its own weights', async () => {
    assert.equal((await getJson(`${server.url}/v2/health/ready`)).status, 200);
    assert.equal(server.registry.workers.threads.length, 2);
    const sessions = server.registry.workers.threads.reduce((sum, thread) => sum + thread.sessions.size, 0);
    assert.equal(sessions, MODELS + 1, 'one session per instance: mlp0 has two');
    for (let i = 0; i < MODELS; i++) await assertAnswersOwnWeights(server, i);
  });

  it("puts a model's instances on different threads, and says which in its metadata", async () => {
    assert.equal(server.registry.resolveReady('mlp0').pool.threads.length, 2);
    assert.equal(server.registry.resolveReady('mlp1').pool.threads.length, 1);
    const placements: number[][] = [];
    for (let i = 0; i < MODELS; i++) {
      placements.push((await getJson(`${server.url}/v2/models/mlp${i}`)).body.runtime.worker_threads as number[]);
    }
    assert.deepEqual([...placements[0]].sort(), [0, 1]);
    // Seven sessions on two threads, each to the one holding fewer: four and three.
    const perThread = [0, 1].map((slot) => placements.flat().filter((s) => s === slot).length);
    assert.deepEqual([...perThread].sort(), [3, 4]);
  });

  it('answers concurrent requests for all models at once, each from its own model', async () => {
    const answers = await within(
      'concurrent requests to every model',
      Promise.all(
        Array.from({ length: MODELS * 4 }, (_, n) =>
          postJson(`${server.url}/v2/models/mlp${n % MODELS}/infer`, inferBody()).then((r) => ({ n, r })),
        ),
      ),
    );
    for (const { n, r } of answers) {
      assert.equal(r.status, 200);
      const expected = mlpReference(n % MODELS, ROW);
      const y = (r.body as { outputs: { data: number[] }[] }).outputs[0].data;
      assert.ok(Math.abs(y[0] - expected[0]) < 1e-3, `request ${n} answered by mlp${n % MODELS}`);
    }
  });

  it("an onnxruntime error in one session fails that run only; the thread's other sessions serve on", async () => {
    const pool = server.registry.resolveReady('mlp1').pool;
    const [thread] = pool.threads;
    // Past the HTTP checks, straight to the session: a width the model does not take.
    const bad = pool.run([{ name: 'x', datatype: 'FP32', shape: [1, 3], data: new Float32Array(3) }]);
    await assert.rejects(bad, {
      message:
        'onnxruntime failed: Got invalid dimensions for input: x for the following indices\n' +
        ' index: 1 Got: 3 Expected: 64\n' +
        ' Please fix either the inputs/outputs or the model.',
    });
    assert.equal(pool.threads[0], thread, 'the thread lives on');
    for (let i = 0; i < MODELS; i++) await assertAnswersOwnWeights(server, i);
  });
});

describe('a worker thread that dies', () => {
  let dir: string;
  let server: RunningServer;

  before(async () => {
    dir = await repository(() => SMALL);
    // One thread: every model's session is on it.
    server = await startTestServer({ modelRepository: dir, workers: 1 });
  });

  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fails the runs it held, naming their instance, and reloads every session it held on a new thread', async () => {
    const [thread] = server.registry.workers.threads;
    assert.equal(thread.sessions.size, MODELS);
    const pools = Array.from({ length: MODELS }, (_, i) => server.registry.resolveReady(`mlp${i}`).pool);
    const idleBy = performance.now() + 30_000;
    while (pools.some((pool) => pool.inFlight > 0)) {
      if (performance.now() > idleBy) assert.fail('gave up after 30000 ms waiting for the thread to be idle');
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Stopped between runs: onnxruntime-node aborts the process when a thread dies inside session.run.
    const stopping = within('the worker thread to stop', thread.worker.terminate());
    const held = [0, 3].map((i) =>
      pools[i].run([{ name: 'x', datatype: 'FP32', shape: [1, ROW.length], data: Float32Array.from(ROW) }]),
    );
    await stopping;
    const settled = await within('the runs the stopped thread held to settle', Promise.allSettled(held));
    assert.deepEqual(
      settled.map((s) => s.status === 'rejected' && (s.reason as Error).message),
      [
        'instance 0 of mlp0:1 stopped during inference: its thread exited with code 1',
        'instance 0 of mlp3:1 stopped during inference: its thread exited with code 1',
      ],
    );
    await waitUntil(
      'every session to be reloaded on a new thread',
      () => server.registry.workers.threads.length === 1 && server.registry.workers.threads[0].sessions.size === MODELS,
      { intervalMs: 20 },
    );
    assert.notEqual(server.registry.workers.threads[0], thread);
    for (let i = 0; i < MODELS; i++) {
      assert.equal((await getJson(`${server.url}/v2/models/mlp${i}/ready`)).status, 200);
      await assertAnswersOwnWeights(server, i);
    }
  });
});

describe('a flooded model beside an idle one on the same thread', () => {
  // ~4 M multiply-adds a run, one request per run: the flood's compute outlasts sending it.
  const HEAVY = [64, 2048, 2048, 16];
  const FLOOD = 300;
  let dir: string;
  let server: RunningServer;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'shared-workers-flood-'));
    await writeRepositoryModel(dir, 'heavy', mlpModel(7, HEAVY), `${SMALL}max_batch_size: 0\n`);
    await writeRepositoryModel(dir, 'mlp0', mlpModel(0), SMALL);
    // One thread: both sessions take turns on it.
    server = await startTestServer({ modelRepository: dir, workers: 1 });
  });

  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers the idle model's request while the flood still waits: the flood holds one place in the thread's line", async () => {
    let answered = 0;
    const row = Array.from({ length: HEAVY[0] }, () => 0.25);
    const flood = Array.from({ length: FLOOD }, () =>
      postJson(`${server.url}/v2/models/heavy/infer`, inferBody(row)).then((response) => {
        assert.equal(response.status, 200, JSON.stringify(response.body));
        answered++;
      }),
    );
    // Sent after every flood request: were the flood's requests all in the thread's line, it would wait for them all.
    await assertAnswersOwnWeights(server, 0);
    const pending = FLOOD - answered;
    console.log(`mlp0 answered while ${pending} of ${FLOOD} flood requests were still pending`);
    assert.ok(pending > 0, 'mlp0 was answered before the flood drained');
    await within('the flood to finish', Promise.all(flood));
  });
});

describe("a thread's line takes turns between models", () => {
  // ~4 M multiply-adds a row: a run of BLOCK rows lasts long enough (tens of ms) that the runs sent
  // right after it are in the thread's line before it ends.
  const HEAVY = [64, 2048, 2048, 16];
  const BLOCK = 128;
  let dir: string;
  let server: RunningServer;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'shared-workers-turns-'));
    // Two instances on one thread: the flooded model has two runs in the thread's line at once.
    await writeRepositoryModel(dir, 'heavy', mlpModel(7, HEAVY), SMALL.replace('instances: 1', 'instances: 2'));
    await writeRepositoryModel(dir, 'mlp0', mlpModel(0), SMALL);
    await writeRepositoryModel(dir, 'mlp1', mlpModel(1), SMALL);
    server = await startTestServer({ modelRepository: dir, workers: 1 });
  });

  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("runs other models' requests, even one that fails, before the busy model's next queued run", async () => {
    const heavy = server.registry.resolveReady('heavy').pool;
    assert.equal(server.registry.workers.threads.length, 1);
    assert.equal(server.registry.workers.threads[0].sessions.size, 4, "heavy's two instances, mlp0 and mlp1");
    const rows = (count: number, width: number) => [
      { name: 'x', datatype: 'FP32' as const, shape: [count, width], data: new Float32Array(count * width).fill(0.25) },
    ];
    const order: string[] = [];
    const track = (name: string, run: Promise<unknown>) =>
      run.then(
        () => order.push(name),
        (error: Error) => order.push(`${name} failed: ${error.message.split('\n')[0]}`),
      );
    // Sent in this order, in one turn of the main thread, to one thread: in arrival order heavy's
    // second run would go before both small models.
    const runs = [
      track('heavy, instance 0', heavy.run(rows(BLOCK, HEAVY[0]))),
      track('heavy, instance 1', heavy.run(rows(1, HEAVY[0]))),
      track('mlp1 (bad width)', server.registry.resolveReady('mlp1').pool.run(rows(1, 3))),
      track('mlp0', server.registry.resolveReady('mlp0').pool.run(rows(1, MLP_LAYERS[0]))),
    ];
    await within('the four runs', Promise.all(runs));
    assert.deepEqual(order, [
      'heavy, instance 0',
      'mlp1 (bad width) failed: onnxruntime failed: Got invalid dimensions for input: x for the following indices',
      'mlp0',
      'heavy, instance 1',
    ]);
  });
});

describe('many models with the default config on a 4-core budget', () => {
  // No session settings in config.yaml: per model, the defaults would be 1 instance × 4 intra-op threads.
  const COUNT = 10;
  const cpu: CpuBudget = { logical: 4, physical: 4, usable: 4 };
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'shared-workers-threads-'));
    for (let i = 0; i < COUNT; i++) await writeRepositoryModel(dir, `mlp${i}`, mlpModel(i), 'warmup:\n  runs: 1\n');
    await writeRepositoryModel(dir, 'explicit', mlpModel(99), 'session:\n  intra_op_threads: 3\nwarmup:\n  runs: 1\n');
  });

  after(() => rm(dir, { recursive: true, force: true }));

  it('runs each defaulted model on 1 intra-op thread, keeps the one set in config.yaml, and says which in metadata', async () => {
    const scan = await scanRepository(dir);
    const before = processThreads();
    const registry = new ModelRegistry(cpu, pino({ level: 'silent' }), { workers: 2 });
    try {
      registry.add(scan);
      await within('every model to load', registry.loadAll());
      const grown = processThreads() - before;
      // Per-model pools would add 10 × 3 threads. With the plan: the 2 worker threads, explicit's 2
      // intra-op threads, and room for 2 that Node may start on its own meanwhile.
      assert.ok(grown <= 2 + 2 + 2, `the process gained ${grown} threads loading ${COUNT + 1} models`);
      for (let i = 0; i < COUNT; i++) {
        const runtime = runtimeOf(registry, `mlp${i}`);
        assert.deepEqual(
          [runtime.instances, runtime.intra_op_threads, runtime.intra_op_threads_source],
          [1, 1, 'many-models'],
        );
      }
      const explicit = runtimeOf(registry, 'explicit');
      assert.deepEqual(
        [explicit.instances, explicit.intra_op_threads, explicit.intra_op_threads_source],
        [1, 3, 'config'],
      );
    } finally {
      await registry.close();
    }
  });

  it('a few models keep per-model thread pools: the usable cores each', async () => {
    const registry = new ModelRegistry(cpu, pino({ level: 'silent' }), { workers: 2 });
    try {
      const scan = await scanRepository(dir);
      scan.specs = scan.specs.filter((spec) => spec.name === 'mlp0' || spec.name === 'mlp1');
      registry.add(scan);
      await within('two models to load', registry.loadAll());
      const runtime = runtimeOf(registry, 'mlp0');
      assert.deepEqual([runtime.instances, runtime.intra_op_threads, runtime.intra_op_threads_source], [1, 4, 'cores']);
    } finally {
      await registry.close();
    }
  });
});

/** Threads of this process, as the kernel counts them (onnxruntime's own pools included). */
function processThreads(): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}

/** The `runtime` part of a model's metadata, as GET /v2/models/{m} answers it. */
function runtimeOf(registry: ModelRegistry, model: string): Record<string, unknown> {
  return (modelMetadata(registry, registry.resolveReady(model)) as { runtime: Record<string, unknown> }).runtime;
}

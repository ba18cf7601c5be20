/**
 * On-demand loading under --model-memory-budget: models are listed UNLOADED and the server is ready
 * at once; the first request loads a model while the requests after it wait for that load; a load
 * that would pass the budget unloads the least recently used idle model first; the index, the
 * metadata and /metrics say so.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseByteSize } from '../../src/repository/on-demand.js';
import type { RunningServer } from '../../src/server/start.js';
import { MLP_LAYERS, mlpModel, mlpReference, writeRepositoryModel } from '../helpers/onnx-builder.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';
import { within } from '../helpers/wait.js';

const MODELS = 3;
const ROW = Array.from({ length: MLP_LAYERS[0] }, (_, i) => ((i % 5) - 2) / 3);
const CONFIG = 'instances: 1\nsession:\n  intra_op_threads: 1\nwarmup:\n  runs: 1\n';
const UNLOADED = 'not loaded: loads on its next request (--model-memory-budget)';

async function repository(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'on-demand-'));
  for (let i = 0; i < MODELS; i++) await writeRepositoryModel(dir, `mlp${i}`, mlpModel(i), CONFIG);
  return dir;
}

async function infer(server: RunningServer, index: number): Promise<void> {
  const response = await postJson(`${server.url}/v2/models/mlp${index}/infer`, {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, ROW.length], data: ROW }],
  });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  const y = (response.body as { outputs: { data: number[] }[] }).outputs[0].data;
  const expected = mlpReference(index, ROW);
  y.forEach((value, j) =>
    assert.ok(Math.abs(value - expected[j]) < 1e-3, `mlp${index} y[${j}] ${value} vs ${expected[j]}`),
  );
}

async function index(
  server: RunningServer,
  headers: Record<string, string> = {},
): Promise<Array<{ name: string; state: string; reason?: string }>> {
  const response = await postJson(`${server.url}/v2/repository/index`, {}, headers);
  assert.equal(response.status, 200);
  return response.body as Array<{ name: string; state: string; reason?: string }>;
}

async function onDemand(server: RunningServer, index: number) {
  const response = await getJson(`${server.url}/v2/models/mlp${index}`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return (response.body as { runtime: { on_demand: { loads: number; evictions: number; memory_bytes: number } } })
    .runtime.on_demand;
}

describe('a budget that holds every model', () => {
  let dir: string;
  let server: RunningServer;

  before(async () => {
    dir = await repository();
    server = await startTestServer({ modelRepository: dir, modelMemoryBudget: parseByteSize('1GB') });
  });

  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is ready before any model is loaded, and lists them UNLOADED with the reason', async () => {
    assert.equal((await getJson(`${server.url}/v2/health/ready`)).status, 200);
    assert.deepEqual(
      await index(server),
      Array.from({ length: MODELS }, (_, i) => ({
        name: `mlp${i}`,
        version: '1',
        state: 'UNLOADED',
        reason: UNLOADED,
      })),
    );
    const ready = await getJson(`${server.url}/v2/models/mlp0/ready`);
    assert.deepEqual(
      [ready.status, ready.body],
      [503, { name: 'mlp0', version: '1', ready: false, state: 'UNLOADED' }],
    );
    assert.equal(
      server.registry.workers.threads.reduce((sum, t) => sum + t.sessions.size, 0),
      0,
      'no session yet',
    );
  });

  it('loads a model on its first request; requests arriving meanwhile wait for that one load', async () => {
    await within('eight first requests to mlp1', Promise.all(Array.from({ length: 8 }, () => infer(server, 1))));
    const demand = await onDemand(server, 1);
    assert.equal(demand.loads, 1);
    assert.equal(demand.evictions, 0);
    const file = (await stat(path.join(dir, 'mlp1', '1', 'model.onnx'))).size;
    assert.ok(demand.memory_bytes >= file, `measured ${demand.memory_bytes} bytes, at least the file's ${file}`);
    const states = Object.fromEntries((await index(server)).map((e) => [e.name, e.state]));
    assert.deepEqual(states, { mlp0: 'UNLOADED', mlp1: 'READY', mlp2: 'UNLOADED' });
  });

  it('reports loads, evictions and measured memory in /metrics', async () => {
    const samples = parseExposition(await (await fetch(`${server.url}/metrics`)).text());
    const mlp1 = { model: 'mlp1', version: '1' };
    assert.equal(sampleValue(samples, 'onnx_serve_model_loads_total', mlp1), 1);
    assert.equal(sampleValue(samples, 'onnx_serve_model_evictions_total', mlp1), 0);
    assert.equal(sampleValue(samples, 'onnx_serve_model_memory_bytes', mlp1), (await onDemand(server, 1)).memory_bytes);
    assert.ok(sampleValue(samples, 'onnx_serve_model_on_demand_load_duration_seconds', mlp1)! > 0);
    assert.equal(sampleValue(samples, 'onnx_serve_model_loads_total', { model: 'mlp0', version: '1' }), 0);
  });
});

describe('a budget that holds one model at a time', () => {
  let dir: string;
  let server: RunningServer;

  before(async () => {
    dir = await repository();
    // At least one model file, less than two: whatever a load measures, a second model never fits.
    const file = (await stat(path.join(dir, 'mlp0', '1', 'model.onnx'))).size;
    server = await startTestServer({ modelRepository: dir, modelMemoryBudget: Math.floor(file * 1.5) });
  });

  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('unloads the least recently used idle model to load the next, and loads it again when asked', async () => {
    for (const i of [0, 1, 2, 0]) {
      await infer(server, i);
      const ready = (await index(server)).filter((e) => e.state === 'READY').map((e) => e.name);
      assert.deepEqual(ready, [`mlp${i}`], `after a request to mlp${i}`);
    }
    // Read in process: the metadata endpoint would load the model it describes.
    const counts = [0, 1, 2].map((i) => {
      const { loads, evictions } = server.registry.resolve(`mlp${i}`).onDemand!;
      return { loads, evictions };
    });
    assert.deepEqual(counts, [
      { loads: 2, evictions: 1 },
      { loads: 1, evictions: 1 },
      { loads: 1, evictions: 1 },
    ]);
    assert.equal(
      server.registry.workers.threads.reduce((sum, t) => sum + t.sessions.size, 0),
      1,
      'one session held',
    );
  });
});

describe('a budget judged by the resident memory too', () => {
  let dir: string;
  let server: RunningServer;

  before(async () => {
    dir = await repository();
    server = await startTestServer({ modelRepository: dir, modelMemoryBudget: parseByteSize('128MB') });
  });

  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("unloads idle models while the process's memory above its base passes the budget, though their sizes fit", async () => {
    await infer(server, 0);
    await infer(server, 1);
    const sizes = [0, 1].map((i) => server.registry.resolve(`mlp${i}`).onDemand!.memoryBytes!);
    // The first also pays onnxruntime's one-off setup in this process; together well within the budget.
    assert.ok(sizes[0] + sizes[1] < parseByteSize('64MB'), `two small models measured ${sizes.join(' and ')} bytes`);
    // Memory that is no model's and stays, as the allocator keeping what evicted models freed would:
    // this process is the server's, so its resident memory grows by this, touched page by page.
    const unaccounted = Buffer.alloc(300 * 2 ** 20).fill(1);
    try {
      // What grew since mlp1 loaded counts as mlp1's first use: both go.
      await infer(server, 2);
      assert.deepEqual(await states(server), ['mlp0 UNLOADED', 'mlp1 UNLOADED', 'mlp2 READY']);
      // Nothing grew since mlp2 loaded, and its size fits: only the resident count still finds no room.
      await infer(server, 0);
      assert.deepEqual(await states(server), ['mlp0 READY', 'mlp1 UNLOADED', 'mlp2 UNLOADED']);
      assert.deepEqual(
        [0, 1, 2].map((i) => server.registry.resolve(`mlp${i}`).onDemand!.evictions),
        [1, 1, 1],
      );
    } finally {
      unaccounted.fill(0, 0, 1);
    }
  });
});

async function states(server: RunningServer): Promise<string[]> {
  return (await index(server)).map((e) => `${e.name} ${e.state}`);
}

describe('model control under a budget', () => {
  const TOKEN = 'on-demand-token';
  let dir: string;
  let server: RunningServer;

  before(async () => {
    dir = await repository();
    server = await startTestServer({
      modelRepository: dir,
      modelMemoryBudget: parseByteSize('1GB'),
      modelControlMode: 'explicit',
      controlToken: TOKEN,
    });
  });

  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists a model added to the repository UNLOADED at its load call, and its first request loads it', async () => {
    await writeRepositoryModel(dir, `mlp${MODELS}`, mlpModel(MODELS), CONFIG);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const load = await postJson(`${server.url}/v2/repository/models/mlp${MODELS}/load`, '', auth);
    assert.equal(load.status, 200, JSON.stringify(load.body));
    const entry = (await index(server, auth)).find((e) => e.name === `mlp${MODELS}`);
    assert.deepEqual(entry, { name: `mlp${MODELS}`, version: '1', state: 'UNLOADED', reason: UNLOADED });
    await infer(server, MODELS);
    assert.equal((await getJson(`${server.url}/v2/models/mlp${MODELS}/ready`)).status, 200);
  });
});

describe('--model-memory-budget values', () => {
  it('reads sizes in binary units and refuses what is no size, naming what it expected', () => {
    assert.equal(parseByteSize('2GB'), 2 * 1024 ** 3);
    assert.equal(parseByteSize('512MiB'), 512 * 1024 ** 2);
    assert.equal(parseByteSize('1.5g'), 1.5 * 1024 ** 3);
    assert.equal(parseByteSize('800000'), 800000);
    assert.throws(() => parseByteSize('lots'), {
      name: 'RangeError',
      message: 'expected a size such as 2GB, 512MB or a number of bytes, got "lots"',
    });
    assert.throws(() => parseByteSize('0GB'), { name: 'RangeError', message: 'expected a size above 0, got "0GB"' });
  });
});

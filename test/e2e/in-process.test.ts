import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InferenceClient } from '../../src/client/index.js';
import {
  isServeError,
  loadModel,
  loadRepository,
  type OcrLine,
  type RecognizedText,
  type Repository,
} from '../../src/index.js';
import { DEFAULT_MODEL_REPOSITORY, type RunningServer } from '../../src/server/start.js';
import { renderDocument, renderTextLine, type DocumentLine } from '../helpers/ocr.js';
import {
  MLP_LAYERS,
  mlpModel,
  mlpReference,
  writeIdentityModel,
  writeRepositoryModel,
} from '../helpers/onnx-builder.js';
import { startTestServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A deterministic, image-like input: values in [-1, 1] that vary along every axis. */
function pattern(shape: number[]): Float32Array {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let index = 0; index < data.length; index++) data[index] = Math.sin(index * 0.37) * Math.cos(index * 0.011);
  return data;
}

const CASES = [
  { model: 'text-orientation', shape: [2, 3, 48, 192] },
  { model: 'text-recognizer', shape: [1, 3, 48, 160] },
  { model: 'text-detector', shape: [1, 3, 96, 128] },
];

describe('in-process API on the default models', () => {
  let repository: Repository;
  let server: RunningServer;

  before(async () => {
    repository = await loadRepository(DEFAULT_MODEL_REPOSITORY);
    server = await startTestServer();
  });
  after(async () => {
    await repository?.close();
    await server?.close();
  });

  test('every default model loads and is ready', () => {
    assert.deepEqual(
      repository.status().map((s) => `${s.name}:${s.version} ${s.state}`),
      ['ocr:1 READY', 'text-detector:1 READY', 'text-orientation:1 READY', 'text-recognizer:1 READY'],
    );
  });

  for (const { model, shape } of CASES) {
    test(`${model}: the in-process API and the server answer the same bytes`, async () => {
      const inputs = { x: { shape, data: pattern(shape) } };
      const local = await repository.model(model).infer(inputs);
      const remote = await new InferenceClient(server.url).infer(model, inputs, { binary: true });
      assert.deepEqual(Object.keys(local.outputs), Object.keys(remote.outputs));
      assert.equal(local.modelName, model);
      assert.equal(local.modelVersion, '1');
      for (const [name, tensor] of Object.entries(local.outputs)) {
        const other = remote.outputs[name];
        assert.deepEqual([tensor.datatype, tensor.shape], [other.datatype, other.shape], name);
        assert.ok(tensor.data instanceof Float32Array && other.data instanceof Float32Array);
        assert.ok(
          Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength).equals(
            Buffer.from(other.data.buffer, other.data.byteOffset, other.data.byteLength),
          ),
          `${model} output ${name} differs between in-process and server`,
        );
      }
    });
  }

  test('metadata is the server metadata', async () => {
    const local = repository.model('text-orientation').metadata;
    const remote = await new InferenceClient(server.url).modelMetadata('text-orientation');
    assert.deepEqual(
      { name: local.name, platform: local.platform, inputs: local.inputs, outputs: local.outputs },
      { name: remote.name, platform: remote.platform, inputs: remote.inputs, outputs: remote.outputs },
    );
  });

  test('errors are typed ServeErrors a caller can tell apart, with the server messages', async () => {
    const model = repository.model('text-orientation');
    await assert.rejects(
      model.infer({ x: { shape: [1, 4, 48, 192], data: new Float32Array(4 * 48 * 192) } }),
      (error) => {
        assert.ok(isServeError(error, 'INVALID_ARGUMENT'));
        assert.equal(error.status, 400);
        assert.equal(error.message, 'inputs[0].shape[1] must be 3 (model text-orientation, input x), got 4');
        return true;
      },
    );
    await assert.rejects(
      model.infer({ y: { shape: [1], data: new Float32Array(1) } }),
      (error) =>
        isServeError(error, 'INVALID_ARGUMENT') &&
        error.message === 'unknown input "y" for model text-orientation; its inputs are: x',
    );
    assert.throws(
      () => repository.model('nope'),
      (error) =>
        isServeError(error, 'NOT_FOUND') && error.message.startsWith("Request for unknown model: 'nope' is not found"),
    );
  });

  test('concurrent calls share batches through the dynamic batcher', async () => {
    const model = repository.model('text-orientation');
    const shape = [1, 3, 48, 192];
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, index) => model.infer({ x: { shape, data: pattern(shape).fill(index / 24) } })),
    );
    const sizes = results.map((result) => Number(result.parameters?.batch_size));
    assert.ok(
      sizes.some((size) => size > 1),
      `24 concurrent requests never shared a batch: batch sizes ${sizes.join(',')}`,
    );
    // Each caller still gets its own row back.
    for (const result of results) assert.deepEqual(Object.values(result.outputs)[0].shape, [1, 2]);
  });

  test('predict: the ocr pipeline reads a rendered page exactly, as the server /predict answers it', async () => {
    const lines: DocumentLine[] = [
      { text: 'Invoice 2026-0042', x: 40, y: 70 },
      { text: 'Total due: 1,234.56 EUR', x: 40, y: 150 },
      { text: 'Order 98765 confirmed', x: 60, y: 250 },
    ];
    const { png } = await renderDocument(640, 320, lines);
    const local = await repository.model('ocr').predict<OcrLine[]>(new Uint8Array(png));
    assert.deepEqual(
      local.results[0].map((line) => line.text),
      lines.map((line) => line.text),
    );
    assert.deepEqual(local.images, [{ name: 'image', width: 640, height: 320 }]);
    assert.deepEqual([local.model_name, local.model_version], ['ocr', '1']);
    assert.equal(typeof local.timings_ms.total, 'number');
    await assert.rejects(
      repository.model('ocr').infer({ x: { shape: [1], data: new Float32Array(1) } }),
      (error) =>
        isServeError(error, 'INVALID_ARGUMENT') &&
        error.message === 'model ocr is a pipeline of other models: call predict() with images',
    );

    const response = await fetch(`${server.url}/v2/models/ocr/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: png,
    });
    assert.equal(response.status, 200);
    const remote = (await response.json()) as typeof local;
    assert.deepEqual(local.results, remote.results);
    assert.deepEqual([remote.model_name, remote.model_version], [local.model_name, local.model_version]);
  });

  test('predict: the recognizer reads a rendered line; several images are one batch, one result each', async () => {
    const model = repository.model('text-recognizer');
    const one = await model.predict<RecognizedText>(await renderTextLine('Hello World 2026'));
    assert.equal(one.results.length, 1);
    assert.equal(one.results[0].text, 'Hello World 2026');
    assert.ok(one.results[0].confidence > 0.8);
    const two = await model.predict<RecognizedText>([
      await renderTextLine('alpha 42'),
      await renderTextLine('Baker Street'),
    ]);
    // In one batch the shorter line is padded to the longer one's width: CTC may read a trailing space there.
    assert.deepEqual(
      two.results.map((result) => result.text.trimEnd()),
      ['alpha 42', 'Baker Street'],
    );
    assert.deepEqual(
      two.images.map((image) => image.name),
      ['image 0', 'image 1'],
    );
  });

  test('predict: bytes that are no image are refused like the server refuses them', async () => {
    await assert.rejects(
      repository.model('text-recognizer').predict(Buffer.from('not an image')),
      (error) => isServeError(error, 'UNSUPPORTED_MEDIA_TYPE') && error.message.startsWith('image is not an image'),
    );
  });

  test('inputs are copied to the workers unless transfer is asked for', async () => {
    const model = repository.model('text-orientation');
    const data = pattern([1, 3, 48, 192]);
    await model.infer({ x: { shape: [1, 3, 48, 192], data } });
    assert.equal(data.length, 3 * 48 * 192);
    await model.infer({ x: { shape: [1, 3, 48, 192], data } }, { transfer: true });
    assert.equal(data.length, 0, 'a transferred input is detached');
  });
});

describe('loadModel', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-in-process-'));
    await writeIdentityModel(dir, 'identity', ['INT64', 'BYTES']);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('loads one file with config.yaml options, infers typed tensors and names outputs in order', async () => {
    const model = await loadModel({
      path: path.join(dir, 'identity', '1', 'model.onnx'),
      name: 'echo',
      config: { instances: 1, session: { intra_op_threads: 1 }, warmup: { runs: 0 } },
    });
    try {
      assert.equal(model.name, 'echo');
      assert.equal((model.metadata as { runtime?: { instances: number } }).runtime?.instances, 1);
      const result = await model.infer(
        {
          x_int64: { shape: [1, 2], data: new BigInt64Array([2n ** 62n, -3n]) },
          x_bytes: { shape: [1, 1], data: ['ü'] },
        },
        { outputs: ['y_bytes', 'y_int64'], id: 'a' },
      );
      // The server's per-request figures (batch size, queue and compute time) come along.
      const { parameters, ...rest } = result;
      assert.equal(parameters?.batch_size, 1);
      assert.deepEqual(rest, {
        modelName: 'echo',
        modelVersion: '1',
        id: 'a',
        outputs: {
          y_bytes: { datatype: 'BYTES', shape: [1, 1], data: ['ü'] },
          y_int64: { datatype: 'INT64', shape: [1, 2], data: new BigInt64Array([2n ** 62n, -3n]) },
        },
      });
    } finally {
      await model.close();
    }
  });

  test('predict on a model without preprocessing is refused, naming what is missing', async () => {
    const model = await loadModel({
      path: path.join(dir, 'identity', '1', 'model.onnx'),
      config: { warmup: { runs: 0 } },
    });
    try {
      await assert.rejects(model.predict(Buffer.from('whatever')), (error) => {
        assert.ok(isServeError(error, 'INVALID_ARGUMENT'));
        assert.equal(error.status, 400);
        assert.equal(
          error.message,
          'model model has no preprocess and postprocess in its config, so it cannot take images; see docs/images.md, or call infer() with tensors',
        );
        return true;
      });
    } finally {
      await model.close();
    }
  });

  test('a missing file, a bad config and an unloadable file are refused with what was wrong', async () => {
    await assert.rejects(
      loadModel(path.join(dir, 'missing.onnx')),
      (error) =>
        isServeError(error, 'NOT_FOUND') && error.message === `model file not found: ${path.join(dir, 'missing.onnx')}`,
    );
    await assert.rejects(loadModel({ path: path.join(dir, 'identity', '1', 'model.onnx'), config: { instances: 0 } }), {
      name: 'ConfigError',
      message: /instances/,
    });
    const junk = path.join(dir, 'junk.onnx');
    await writeFile(junk, 'junk');
    await assert.rejects(
      loadModel(junk),
      (error) => isServeError(error, 'UNAVAILABLE') && error.message.startsWith('model junk:1 failed to load: '),
    );
  });

  test('close() leaves nothing behind: a process that loads, infers and closes exits on its own', async () => {
    const script = path.join(dir, 'load-and-exit.mts');
    await writeFile(
      script,
      `import { loadModel } from ${JSON.stringify(path.join(ROOT, 'src/index.ts'))};
const model = await loadModel(${JSON.stringify(path.join(dir, 'identity', '1', 'model.onnx'))});
const result = await model.infer({ x_int64: { shape: [1, 1], data: new BigInt64Array([7n]) }, x_bytes: { shape: [1, 1], data: ['a'] } });
await model.close();
console.log('answer', result.outputs.y_int64.data[0]);
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // Generous: the bound only says "it did not hang", it measures nothing.
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      // 'close': every byte of the output has been read by then, which is not so at 'exit'.
      child.on('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal])),
    );
    clearTimeout(killer);
    assert.deepEqual({ code, signal, output }, { code: 0, signal: null, output: 'answer 7n\n' });
  });
});

describe('loadRepository with a memory budget', () => {
  const ROW = Array.from({ length: MLP_LAYERS[0] }, (_, i) => ((i % 5) - 2) / 3);
  const CONFIG = 'instances: 1\nsession:\n  intra_op_threads: 1\nwarmup:\n  runs: 1\n';
  let dir: string;
  let repository: Repository;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'in-process-budget-'));
    for (let i = 0; i < 3; i++) await writeRepositoryModel(dir, `mlp${i}`, mlpModel(i), CONFIG);
    // More than one model file, less than two: whatever a load measures, one model at a time.
    const file = (await stat(path.join(dir, 'mlp0', '1', 'model.onnx'))).size;
    repository = await loadRepository(dir, { modelMemoryBudget: Math.floor(file * 1.5) });
  });

  after(async () => {
    await repository?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const states = () => repository.status().map((s) => `${s.name} ${s.state}`);

  test('lists the models UNLOADED, loads each on its first infer() and unloads the least recently used', async () => {
    assert.deepEqual(states(), ['mlp0 UNLOADED', 'mlp1 UNLOADED', 'mlp2 UNLOADED']);
    assert.throws(() => repository.model('mlp2').metadata, {
      message:
        "Request for unknown model: 'mlp2' version 1 is not at ready state; it is unloaded and loads on its next request",
    });
    for (const i of [0, 1, 0]) {
      const result = await repository
        .model(`mlp${i}`)
        .infer({ x: { data: Float32Array.from(ROW), shape: [1, ROW.length] } });
      const y = [...(result.outputs.y.data as Float32Array)];
      mlpReference(i, ROW).forEach((expected, j) => assert.ok(Math.abs(y[j] - expected) < 1e-3, `mlp${i} y[${j}]`));
      assert.deepEqual(
        states(),
        [0, 1, 2].map((m) => `mlp${m} ${m === i ? 'READY' : 'UNLOADED'}`),
        `after infer() on mlp${i}`,
      );
    }
  });

  test('refuses a budget that is no size, naming the option', async () => {
    await assert.rejects(loadRepository(dir, { modelMemoryBudget: 'lots' }), {
      name: 'RangeError',
      message: 'modelMemoryBudget: expected a size such as 2GB, 512MB or a number of bytes, got "lots"',
    });
    await assert.rejects(loadRepository(dir, { modelMemoryBudget: -1 }), {
      name: 'RangeError',
      message: 'modelMemoryBudget must be a positive whole number of bytes, got -1',
    });
  });
});

import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { InferenceClient, InferenceServerError, type InferInputs, type Tensor } from '../../src/client/index.js';
import { retryAfterMs } from '../../src/client/errors.js';
import { DATATYPES, type Datatype } from '../../src/protocol/datatypes.js';
import type { RunningServer } from '../../src/server/start.js';
import { writeIdentityModel } from '../helpers/onnx-builder.js';
import { startTestServer } from '../helpers/server.js';

const ALL_DATATYPES = Object.keys(DATATYPES) as Datatype[];

/** Two rows of values per datatype, edge cases included: beyond 2^53, extremes, NaN, -0, Unicode. */
const SAMPLES: Record<Datatype, Tensor['data']> = {
  BOOL: new Uint8Array([1, 0, 0, 1]),
  UINT8: new Uint8Array([0, 1, 128, 255]),
  UINT16: new Uint16Array([0, 1, 32768, 65535]),
  UINT32: new Uint32Array([0, 1, 2 ** 31, 2 ** 32 - 1]),
  UINT64: new BigUint64Array([0n, 1n, 2n ** 53n + 1n, 2n ** 64n - 1n]),
  INT8: new Int8Array([-128, -1, 0, 127]),
  INT16: new Int16Array([-32768, -1, 0, 32767]),
  INT32: new Int32Array([-(2 ** 31), -1, 0, 2 ** 31 - 1]),
  INT64: new BigInt64Array([-(2n ** 63n), -(2n ** 53n) - 1n, 0n, 2n ** 63n - 1n]),
  FP16: new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x8000]), // 1, -2, 65504, -0
  FP32: new Float32Array([1.5, -0, NaN, 3.4028234663852886e38]),
  FP64: new Float64Array([Math.PI, -Infinity, 5e-324, -0]),
  // Not NUL: onnxruntime-node's string tensors are C strings and end at the first NUL.
  BYTES: ['', 'ascii', 'é ✓ 日本', 'tab\tnewline\n'],
};

function allInputs(): InferInputs {
  return Object.fromEntries(
    ALL_DATATYPES.map((datatype) => [
      `x_${datatype.toLowerCase()}`,
      { datatype, shape: [2, 2], data: SAMPLES[datatype] },
    ]),
  );
}

describe('InferenceClient against the real server', () => {
  let dir: string;
  let server: RunningServer;
  let client: InferenceClient;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-client-'));
    await writeIdentityModel(dir, 'identity', ALL_DATATYPES);
    // A model that cannot load: the server answers 503 for it.
    await mkdir(path.join(dir, 'broken', '1'), { recursive: true });
    await writeFile(path.join(dir, 'broken', '1', 'model.onnx'), 'not an onnx file');
    server = await startTestServer({ modelRepository: dir });
    client = new InferenceClient(server.url, { retries: 0 });
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('health, server metadata, model metadata and model readiness', async () => {
    assert.equal(await client.live(), true);
    assert.equal(await client.ready(), false, 'strict readiness: the broken model keeps the server unready');
    assert.equal(await client.modelReady('identity'), true);
    assert.equal(await client.modelReady('identity', { version: '1' }), true);
    assert.equal(await client.modelReady('broken'), false);
    const metadata = await client.serverMetadata();
    assert.equal(metadata.name, 'onnx-serve');
    assert.ok(metadata.extensions.includes('binary_tensor_data'), String(metadata.extensions));
    const model = await client.modelMetadata('identity');
    assert.equal(model.name, 'identity');
    assert.equal(model.platform, 'onnx_onnxv1');
    assert.deepEqual(
      model.inputs.map((input) => [input.name, input.datatype, input.shape]),
      ALL_DATATYPES.map((datatype) => [`x_${datatype.toLowerCase()}`, datatype, [-1, -1]]),
    );
  });

  for (const [label, options] of [
    ['JSON both ways', { binary: false }],
    ['binary both ways', { binary: true }],
    ['binary inputs, JSON outputs', { binary: true, binaryOutputs: false }],
    ['JSON inputs, binary outputs', { binary: false, binaryOutputs: true }],
  ] as const) {
    test(`every datatype round-trips exactly: ${label}`, async () => {
      const result = await client.infer('identity', allInputs(), { ...options, id: 'round-trip' });
      assert.equal(result.modelName, 'identity');
      assert.equal(result.modelVersion, '1');
      assert.equal(result.id, 'round-trip');
      assert.deepEqual(
        Object.keys(result.outputs),
        ALL_DATATYPES.map((datatype) => `y_${datatype.toLowerCase()}`),
      );
      for (const datatype of ALL_DATATYPES) {
        const output = result.outputs[`y_${datatype.toLowerCase()}`];
        assert.deepEqual(output, { datatype, shape: [2, 2], data: SAMPLES[datatype] }, datatype);
      }
    });
  }

  test('a big input goes binary by default, a small one as JSON, and outputs can be picked', async () => {
    const big = new Float32Array(50_000).map((_, index) => index / 7);
    const result = await client.infer(
      'identity',
      { ...allInputs(), x_fp32: { shape: [1, big.length], data: big } },
      { outputs: ['y_fp32', 'y_int64'] },
    );
    assert.deepEqual(Object.keys(result.outputs), ['y_fp32', 'y_int64']);
    assert.deepEqual(result.outputs.y_fp32.data, big);
    const small = new InferenceClient(server.url, { binaryThresholdBytes: 0 });
    const viaBinary = await small.infer('identity', allInputs(), { outputs: ['y_bytes'] });
    assert.deepEqual(viaBinary.outputs.y_bytes.data, SAMPLES.BYTES);
  });

  test('asks for answers uncompressed unless told otherwise (Node fetch asks gzip by default)', async () => {
    const encodings: Array<string | null> = [];
    const recording = (headers?: Record<string, string>) =>
      new InferenceClient(server.url, {
        ...(headers === undefined ? {} : { headers }),
        fetch: async (input, init) => {
          const response = await fetch(input, init);
          encodings.push(response.headers.get('content-encoding'));
          return response;
        },
      });
    const big = new Float32Array(50_000).map((_, index) => index / 7);
    const inputs = { ...allInputs(), x_fp32: { shape: [1, big.length], data: big } };
    const plain = await recording().infer('identity', inputs, { outputs: ['y_fp32'] });
    const gzipped = await recording({ 'accept-encoding': 'gzip' }).infer('identity', inputs, { outputs: ['y_fp32'] });
    assert.deepEqual(encodings, [null, 'gzip']);
    assert.deepEqual([plain.outputs.y_fp32.data, gzipped.outputs.y_fp32.data], [big, big]);
  });

  test("a 400 carries the server's message", async () => {
    const inputs = { ...allInputs(), x_fp32: { shape: [4], data: new Float32Array(4) } };
    await assert.rejects(client.infer('identity', inputs), (error: unknown) => {
      assert.ok(error instanceof InferenceServerError);
      assert.equal(error.status, 400);
      assert.equal(error.message, 'input x_fp32 of model identity has rank 2 ([-1,-1]), got shape [4] of rank 1');
      return true;
    });
  });

  test("a 404 carries the server's message", async () => {
    await assert.rejects(client.modelMetadata('nope', { requestId: 'req-404' }), (error: unknown) => {
      assert.ok(error instanceof InferenceServerError);
      assert.equal(error.status, 404);
      assert.equal(error.message, "Request for unknown model: 'nope' is not found; models served: broken, identity");
      assert.equal(error.requestId, 'req-404');
      return true;
    });
  });

  test("a 503 carries the server's message", async () => {
    await assert.rejects(client.infer('broken', allInputs()), (error: unknown) => {
      assert.ok(error instanceof InferenceServerError);
      assert.equal(error.status, 503);
      assert.match(
        error.message,
        /^Request for unknown model: 'broken' version 1 is not at ready state; it is unavailable: /,
      );
      return true;
    });
  });

  test('inputs that cannot be sent are refused before any request, naming the input', async () => {
    await assert.rejects(
      client.infer('identity', { x_bool: { shape: [2], data: new Uint8Array(3), datatype: 'BOOL' } }),
      {
        name: 'ServeError',
        message: 'input "x_bool": data has 3 elements but shape [2] needs 2',
      },
    );
    await assert.rejects(client.infer('identity', { x: { shape: [1], data: [1] as unknown as string[] } }), {
      message: 'input "x": BYTES data must hold strings only',
    });
    await assert.rejects(client.infer('identity', { x: { shape: [1], data: new Float32Array(1), datatype: 'FP64' } }), {
      message: 'input "x": FP64 data must be a Float64Array, got Float32Array',
    });
  });
});

describe('InferenceClient retries, request ids, timeouts and predict (stub server)', () => {
  let stub: FastifyInstance;
  let url: string;
  const seen: { path: string; requestId?: string; contentType?: string; bytes: number }[] = [];
  let failuresLeft = 0;

  before(async () => {
    stub = Fastify();
    stub.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    stub.get('/v2', async (request, reply) => {
      seen.push({ path: request.url, requestId: request.headers['x-request-id'] as string, bytes: 0 });
      if (failuresLeft > 0) {
        failuresLeft--;
        return reply.code(503).header('retry-after', '1').send({ error: 'model queue is full (stub)' });
      }
      return { name: 'stub', version: '0', extensions: [] };
    });
    stub.get('/v2/health/live', () => new Promise(() => {})); // never answers
    stub.post('/v2/models/:model/predict', async (request) => {
      const body = request.body as Buffer;
      seen.push({ path: request.url, contentType: request.headers['content-type'], bytes: body.length });
      return { labels: ['cat'], bytes: body.length };
    });
    url = await stub.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await stub?.close();
  });

  test('a 503 is retried once, after its Retry-After, and a second 503 is the answer', async () => {
    seen.length = 0;
    failuresLeft = 1;
    const client = new InferenceClient(url);
    assert.deepEqual(await client.serverMetadata({ requestId: 'r-1' }), { name: 'stub', version: '0', extensions: [] });
    assert.deepEqual(
      seen.map((s) => s.requestId),
      ['r-1', 'r-1'],
    );

    seen.length = 0;
    failuresLeft = 2;
    await assert.rejects(client.serverMetadata(), (error: unknown) => {
      assert.ok(error instanceof InferenceServerError);
      assert.equal(error.status, 503);
      assert.equal(error.message, 'model queue is full (stub)');
      assert.equal(error.retryAfterMs, 1000);
      return true;
    });
    assert.equal(seen.length, 2);

    seen.length = 0;
    failuresLeft = 1;
    await assert.rejects(new InferenceClient(url, { retries: 0 }).serverMetadata(), { status: 503 });
    assert.equal(seen.length, 1);
  });

  test('a call past its timeout is aborted with a TimeoutError', async () => {
    const client = new InferenceClient(url, { timeoutMs: 200 });
    await assert.rejects(client.live(), { name: 'TimeoutError' });
    const controller = new AbortController();
    const call = new InferenceClient(url).live({ signal: controller.signal });
    controller.abort();
    await assert.rejects(call, { name: 'AbortError' });
  });

  test('predict posts the image bytes with their sniffed type and returns the JSON answer', async () => {
    seen.length = 0;
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    const client = new InferenceClient(url);
    assert.deepEqual(await client.predict('classifier', png), { labels: ['cat'], bytes: 11 });
    assert.deepEqual(seen, [{ path: '/v2/models/classifier/predict', contentType: 'image/png', bytes: 11 }]);
    await assert.rejects(client.predict('classifier', new Uint8Array([1, 2, 3])), {
      name: 'TypeError',
      message: 'predict: cannot tell the image type from its bytes (JPEG, PNG, GIF, WebP or BMP); pass contentType',
    });
  });

  test('Retry-After is read as seconds or as an HTTP date', () => {
    assert.equal(retryAfterMs('2'), 2000);
    assert.equal(retryAfterMs('Wed, 21 Oct 2015 07:28:05 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 5000);
    assert.equal(retryAfterMs('soon'), undefined);
    assert.equal(retryAfterMs(null), undefined);
  });
});

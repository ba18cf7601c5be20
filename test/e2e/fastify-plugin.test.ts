import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import fastifyCompress from '@fastify/compress';
import Fastify, { type FastifyInstance } from 'fastify';
import { InferenceClient } from '../../src/client/index.js';
import { loadRepository, type Repository } from '../../src/index.js';
import { onnxServe } from '../../src/server/plugin.js';
import { writeIdentityModel } from '../helpers/onnx-builder.js';
import { getJson, postJson } from '../helpers/server.js';

describe('onnx-serve/fastify mounted under a prefix beside the app’s own routes', () => {
  let dir: string;
  let repository: Repository;
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-plugin-'));
    await writeIdentityModel(dir, 'identity', ['FP32', 'INT64']);
    repository = await loadRepository(dir);
    // The user's app: a small body limit, its own JSON route, its own 404.
    app = Fastify({ bodyLimit: 1024 });
    app.post('/echo', async (request) => ({ received: request.body }));
    app.setNotFoundHandler((_request, reply) => void reply.code(404).send({ message: 'not here (app)' }));
    await app.register(onnxServe, { prefix: '/ml', repository });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app?.close();
    await repository?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the protocol answers under the prefix, in JSON and binary, past the app’s body limit', async () => {
    const client = new InferenceClient(`${url}/ml`);
    assert.equal(await client.ready(), true);
    assert.equal((await client.serverMetadata()).name, 'onnx-serve');
    const big = new Float32Array(4096).map((_, index) => index);
    for (const binary of [false, true]) {
      const result = await client.infer(
        'identity',
        {
          x_fp32: { shape: [1, big.length], data: big },
          x_int64: { shape: [1, 1], data: new BigInt64Array([2n ** 63n - 1n]) },
        },
        { binary },
      );
      assert.deepEqual(result.outputs.y_fp32.data, big);
      assert.deepEqual(result.outputs.y_int64.data, new BigInt64Array([2n ** 63n - 1n]));
    }
  });

  test('the app’s JSON route still parses JSON and keeps its own body limit', async () => {
    assert.deepEqual(await postJson(`${url}/echo`, { a: [1, 2] }).then((r) => [r.status, r.body]), [
      200,
      { received: { a: [1, 2] } },
    ]);
    const tooBig = await postJson(`${url}/echo`, { text: 'x'.repeat(2000) });
    assert.equal(tooBig.status, 413);
  });

  test('404s: the protocol’s own under the prefix, the app’s elsewhere', async () => {
    assert.deepEqual(await getJson(`${url}/ml/v2/nothing`).then((r) => [r.status, r.body]), [
      404,
      {
        error:
          'no route GET /ml/v2/nothing; see GET /ml/v2 and /ml/v2/models/{model}[/versions/{version}][/ready|/infer|/predict]',
      },
    ]);
    assert.deepEqual(await getJson(`${url}/elsewhere`).then((r) => [r.status, r.body]), [
      404,
      { message: 'not here (app)' },
    ]);
    const unknown = await postJson(`${url}/ml/v2/models/nope/infer`, { inputs: [] });
    assert.deepEqual(
      [unknown.status, unknown.body],
      [404, { error: "Request for unknown model: 'nope' is not found; models served: identity" }],
    );
  });
});

test('mounts into an app that registers @fastify/compress itself; answers still compress on request', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-plugin-compress-'));
  await writeIdentityModel(dir, 'identity', ['FP32']);
  const repository = await loadRepository(dir);
  const app = Fastify();
  try {
    await app.register(fastifyCompress);
    await app.register(onnxServe, { prefix: '/ml', repository });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const data = Array.from({ length: 2048 }, (_, index) => index);
    const response = await fetch(`${url}/ml/v2/models/identity/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: JSON.stringify({ inputs: [{ name: 'x_fp32', datatype: 'FP32', shape: [1, 2048], data }] }),
    });
    assert.deepEqual([response.status, response.headers.get('content-encoding')], [200, 'gzip']);
    assert.deepEqual(((await response.json()) as { outputs: { data: number[] }[] }).outputs[0].data, data);
  } finally {
    await app.close();
    await repository.close();
    await rm(dir, { recursive: true, force: true });
  }
});

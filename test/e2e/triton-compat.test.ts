/**
 * What clients written for Triton and KServe rely on beyond inference itself, over real HTTP and gRPC
 * against one server of small generated models: the plain JSON content type, Triton's wording for
 * models and versions a request cannot use, and the contracts of issue 15 as they land.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { createInferenceClient, type InferenceClient } from '../../src/grpc/client.js';
import type { RunningServer } from '../../src/server/start.js';
import { loadModel } from '../../src/index.js';
import { isServeError } from '../../src/library/errors.js';
import { decodeTensorBlob, encodeBinaryRequest, HEADER_LENGTH_HEADER } from '../../src/protocol/binary-extension.js';
import { constantModel, passThroughModel, writeRepositoryModel } from '../helpers/onnx-builder.js';
import { assertGrpcError } from '../helpers/grpc.js';
import { postJson, startTestServer } from '../helpers/server.js';

let dir: string;
let server: RunningServer;
let client: InferenceClient;

const QUIET = 'instances: 1\nsession: { intra_op_threads: 1 }\nwarmup: { runs: 1 }\n';

async function get(url: string) {
  const response = await fetch(url);
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-triton-'));
  const identity = passThroughModel([{ input: 'x', output: 'y', datatype: 'FP32', shape: ['batch', 2] }]);
  await writeRepositoryModel(dir, 'identity', identity, QUIET);
  await writeRepositoryModel(dir, 'capped', identity, `${QUIET}max_batch_size: 2\n`);
  const fixed = passThroughModel([{ input: 'text', output: 'same', datatype: 'BYTES', shape: [2, 3] }]);
  await writeRepositoryModel(dir, 'fixed', fixed, QUIET);
  await writeRepositoryModel(dir, 'constant', constantModel([1.5, 2.5]), QUIET);
  const scores = passThroughModel([{ input: 'x', output: 'y', datatype: 'FP32', shape: ['batch', 4] }]);
  await writeRepositoryModel(dir, 'scores', scores, `${QUIET}label_filename: { y: labels.txt }\n`);
  await writeFile(path.join(dir, 'scores', 'labels.txt'), 'cat\ndog\n\nbird\n');
  await writeRepositoryModel(dir, 'broken', new TextEncoder().encode('not a model'), QUIET);
  // A config key onnx-serve does not know: the model is listed, with no version that could load.
  await writeRepositoryModel(dir, 'misconfigured', identity, `${QUIET}no_such_key: 1\n`);
  server = await startTestServer({ modelRepository: dir, grpcPort: 0, strictReadiness: false });
  assert.ok(server.grpc);
  client = createInferenceClient(server.grpc.address);
});

after(async () => {
  client?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('JSON answers: Content-Type application/json with no parameters (KServe reads only that)', () => {
  it('results, metadata, errors, the 404 route and the router refusal all say exactly application/json', async () => {
    const answers = {
      server: await get(`${server.url}/v2`),
      metadata: await get(`${server.url}/v2/models/identity`),
      unknownModel: await get(`${server.url}/v2/models/nope`),
      noRoute: await get(`${server.url}/v2/nothing-here`),
      badUrl: await get(`${server.url}/v2/models/%zz`),
    };
    assert.deepEqual(Object.fromEntries(Object.entries(answers).map(([key, a]) => [key, [a.status, a.type]])), {
      server: [200, 'application/json'],
      metadata: [200, 'application/json'],
      unknownModel: [404, 'application/json'],
      noRoute: [404, 'application/json'],
      badUrl: [400, 'application/json'],
    });
    const result = await postJson(`${server.url}/v2/models/identity/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1.5, -2] }],
    });
    assert.deepEqual([result.status, result.headers.get('content-type')], [200, 'application/json']);
    assert.deepEqual(result.body.outputs[0].data, [1.5, -2]);
    const invalid = await postJson(`${server.url}/v2/models/identity/infer`, '{"inputs": [');
    assert.deepEqual([invalid.status, invalid.headers.get('content-type')], [400, 'application/json']);
    assert.match(invalid.body.error, /JSON/);
  });
});

describe("Triton's wording for models and versions a request cannot use, then onnx-serve's detail", () => {
  const cases = [
    {
      what: 'unknown model',
      url: '/v2/models/nope',
      grpc: { name: 'nope' },
      status: 404,
      code: status.NOT_FOUND,
      message:
        "Request for unknown model: 'nope' is not found; models served: broken, capped, constant, fixed, identity, misconfigured, scores",
    },
    {
      what: 'unknown version',
      url: '/v2/models/identity/versions/9',
      grpc: { name: 'identity', version: '9' },
      status: 404,
      code: status.NOT_FOUND,
      message: "Request for unknown model: 'identity' version 9 is not found; versions: 1",
    },
    {
      what: 'a model whose configuration is invalid',
      url: '/v2/models/misconfigured',
      grpc: { name: 'misconfigured' },
      status: 503,
      code: status.UNAVAILABLE,
      message: "Request for unknown model: 'misconfigured' has no available versions: ",
    },
    {
      what: 'a version that failed to load',
      url: '/v2/models/broken/versions/1',
      grpc: { name: 'broken', version: '1' },
      status: 503,
      code: status.UNAVAILABLE,
      message: "Request for unknown model: 'broken' version 1 is not at ready state; it is unavailable: ",
    },
  ];
  for (const c of cases) {
    it(`${c.what}: HTTP metadata and infer, gRPC ModelMetadata and ModelInfer`, async () => {
      const metadata = await get(`${server.url}${c.url}`);
      const infer = await postJson(`${server.url}${c.url}/infer`, { inputs: [] });
      for (const [answer, body] of [
        [metadata, JSON.parse(metadata.body)],
        [infer, infer.body],
      ] as const) {
        assert.equal(answer.status, c.status);
        assert.ok(body.error.startsWith(c.message), body.error);
      }
      const grpcCalls = [
        client.modelMetadata(c.grpc),
        client.modelInfer({ model_name: c.grpc.name, model_version: c.grpc.version ?? '', inputs: [] }),
      ];
      for (const call of grpcCalls) {
        await assert.rejects(call, (error: ServiceError) => {
          assert.equal(status[error.code], status[c.code]);
          assert.ok(error.details.startsWith(c.message), error.details);
          return true;
        });
      }
    });
  }

  it('the message over gRPC is the one over HTTP', async () => {
    const http = JSON.parse((await get(`${server.url}/v2/models/nope`)).body);
    await assertGrpcError(client.modelMetadata({ name: 'nope' }), status.NOT_FOUND, http.error);
  });
});

describe('max_batch_size from config.yaml caps the batch one request carries (Triton refuses more)', () => {
  const message =
    "inference request batch-size must be <= 2 for 'capped': inputs[0] (x) has 3 items in its first dimension, " +
    "more than max_batch_size 2 in the model's config.yaml";
  const rows = (n: number) => Array.from({ length: n * 2 }, (_, i) => i);

  it('HTTP: 2 items run, 3 items are 400 naming both numbers; a model without it takes any batch', async () => {
    const url = `${server.url}/v2/models/capped/infer`;
    const two = await postJson(url, { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], data: rows(2) }] });
    assert.deepEqual([two.status, two.body.outputs[0].data], [200, rows(2)]);
    const three = await postJson(url, { inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 2], data: rows(3) }] });
    assert.deepEqual([three.status, three.body], [400, { error: message }]);
    const free = await postJson(`${server.url}/v2/models/identity/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [12, 2], data: rows(12) }],
    });
    assert.deepEqual([free.status, free.body.outputs[0].shape], [200, [12, 2]]);
  });

  it('gRPC: the same refusal as INVALID_ARGUMENT, before the contents are read', async () => {
    const request = (n: number) => ({
      model_name: 'capped',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [n, 2], contents: { fp32_contents: rows(n) } }],
    });
    const two = await client.modelInfer(request(2));
    assert.deepEqual(
      two.outputs.map((o) => o.shape.map(Number)),
      [[2, 2]],
    );
    await assertGrpcError(client.modelInfer(request(3)), status.INVALID_ARGUMENT, message);
  });

  it('in-process: infer() refuses it too', async () => {
    const model = await loadModel({
      path: path.join(dir, 'capped', '1', 'model.onnx'),
      name: 'capped',
      config: { max_batch_size: 2, instances: 1, session: { intra_op_threads: 1 } },
    });
    try {
      await assert.rejects(
        model.infer({ x: { data: Float32Array.from(rows(3)), shape: [3, 2] } }),
        (error) => isServeError(error, 'INVALID_ARGUMENT') && error.message === message,
      );
      const two = await model.infer({ x: { data: Float32Array.from(rows(2)), shape: [2, 2] } });
      assert.deepEqual(Array.from(two.outputs.y.data as Float32Array), rows(2));
    } finally {
      await model.close();
    }
  });
});

/** A POST over node:http, which (unlike fetch) leaves the answer's bytes and Content-Encoding as they came. */
function rawPost(url: string, body: Uint8Array, headers: Record<string, string>) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>(
    (resolve, reject) => {
      const request = httpRequest(url, { method: 'POST', headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }),
        );
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end(body);
    },
  );
}

describe('compressed request bodies (Content-Encoding) and answers (Accept-Encoding)', () => {
  const values = Array.from({ length: 400 }, (_, i) => i / 8);
  const json = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [200, 2], data: values }] });

  it('a gzip or deflate JSON body is decoded; the answer is compressed only when asked', async () => {
    const url = `${server.url}/v2/models/identity/infer`;
    for (const [encoding, encode] of [
      ['gzip', gzipSync],
      ['deflate', deflateSync],
    ] as const) {
      const plain = await rawPost(url, encode(json), {
        'content-type': 'application/json',
        'content-encoding': encoding,
      });
      assert.equal(plain.status, 200, plain.body.toString());
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.deepEqual(JSON.parse(plain.body.toString()).outputs[0].data, values);

      const compressed = await rawPost(url, encode(json), {
        'content-type': 'application/json',
        'content-encoding': encoding,
        'accept-encoding': encoding,
      });
      assert.equal(compressed.status, 200);
      assert.equal(compressed.headers['content-encoding'], encoding);
      assert.equal(compressed.headers['content-type'], 'application/json');
      const decoded = (encoding === 'gzip' ? gunzipSync : inflateSync)(compressed.body);
      assert.deepEqual(JSON.parse(decoded.toString()).outputs[0].data, values);
    }
  });

  it('a gzip binary-extension body: Inference-Header-Content-Length counts the decoded JSON header', async () => {
    const data = Float32Array.from(values);
    const encoded = encodeBinaryRequest({ inputs: [{ name: 'x', datatype: 'FP32', shape: [200, 2], data }] });
    const answer = await rawPost(`${server.url}/v2/models/identity/infer`, gzipSync(Buffer.concat(encoded.chunks)), {
      'content-type': 'application/octet-stream',
      'content-encoding': 'gzip',
      [HEADER_LENGTH_HEADER]: String(encoded.headerLength),
    });
    assert.equal(answer.status, 200, answer.body.toString());
    assert.deepEqual(JSON.parse(answer.body.toString()).outputs[0].data, values);
  });

  it('only inference answers are compressed: statistics, config and metadata go plain whatever Accept-Encoding says', async () => {
    // tritonclient's asyncio HTTP client (tritonclient/http/aio/__init__.py) opens its aiohttp session
    // with auto_decompress=False, and aiohttp sends "Accept-Encoding: gzip, deflate" on every call;
    // the client decodes only inference answers, so get_inference_statistics failed on a gzip body
    // (UnicodeDecodeError) until onnx-serve compressed, as Triton does, nothing else.
    const get = (url: string) =>
      new Promise<{ status: number; encoding: string | undefined; body: Buffer }>((resolve, reject) => {
        const request = httpRequest(url, { headers: { 'accept-encoding': 'gzip, deflate' } }, (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode!,
              encoding: response.headers['content-encoding'],
              body: Buffer.concat(chunks),
            }),
          );
          response.on('error', reject);
        });
        request.on('error', reject);
        request.end();
      });
    for (const route of ['/v2/models/stats', '/v2/models/identity/config', '/v2/models/identity', '/v2']) {
      const answer = await get(`${server.url}${route}`);
      assert.deepEqual([answer.status, answer.encoding], [200, undefined], route);
      assert.equal(typeof JSON.parse(answer.body.toString()), 'object');
    }
    assert.ok(
      (await get(`${server.url}/v2/models/stats`)).body.length > 1024,
      'big enough to be compressed if it were',
    );
    const inference = await rawPost(`${server.url}/v2/models/identity/infer`, Buffer.from(json), {
      'content-type': 'application/json',
      'accept-encoding': 'gzip, deflate',
    });
    assert.equal(inference.headers['content-encoding'], 'gzip');
  });

  it('data that is not what Content-Encoding says is 400; an encoding other than gzip or deflate is 415', async () => {
    const url = `${server.url}/v2/models/identity/infer`;
    const bad = await rawPost(url, Buffer.from(json), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['content-type'], 'application/json');
    assert.equal(
      JSON.parse(bad.body.toString()).error,
      'request body is not valid gzip data (Content-Encoding: gzip): incorrect header check',
    );
    const brotli = await rawPost(url, Buffer.from(json), {
      'content-type': 'application/json',
      'content-encoding': 'br',
    });
    assert.deepEqual(
      [brotli.status, JSON.parse(brotli.body.toString())],
      [415, { error: 'Content-Encoding "br" is not supported; send the body as it is, or with gzip or deflate' }],
    );
  });

  it('the body limit counts decoded bytes: a compression bomb is 413, and the server keeps serving', async () => {
    const limited = await startTestServer({ modelRepository: dir, bodyLimit: 64 * 1024, strictReadiness: false });
    try {
      const url = `${limited.url}/v2/models/identity/infer`;
      // 16 MiB of spaces compress to about 16 KiB: under the limit on the wire, 256 times over it decoded.
      const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024, ' '));
      assert.ok(bomb.length < 64 * 1024);
      const refused = await rawPost(url, bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      assert.deepEqual(
        [refused.status, JSON.parse(refused.body.toString())],
        [
          413,
          {
            error:
              'request body decodes (Content-Encoding: gzip) to more than the limit of 65536 bytes (0.1 MiB); raise it with --max-body-size',
          },
        ],
      );
      const fine = await rawPost(url, gzipSync(json), {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      });
      assert.equal(fine.status, 200);
    } finally {
      await limited.close();
    }
  });
});

describe("model configuration extension: Triton's ModelConfig over HTTP and gRPC", () => {
  const queuePolicy = {
    timeout_action: 'REJECT',
    default_timeout_microseconds: 0,
    allow_timeout_override: true,
    max_queue_size: 512,
  };
  const batched = (name: string, maxBatchSize: number) => ({
    name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    version_policy: { all: {} },
    max_batch_size: maxBatchSize,
    input: [
      {
        name: 'x',
        data_type: 'TYPE_FP32',
        format: 'FORMAT_NONE',
        dims: [2],
        is_shape_tensor: false,
        allow_ragged_batch: false,
        optional: false,
      },
    ],
    output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [2], label_filename: '', is_shape_tensor: false }],
    dynamic_batching: {
      preferred_batch_size: [],
      max_queue_delay_microseconds: 0,
      preserve_ordering: false,
      priority_levels: 0,
      default_priority_level: 0,
      default_queue_policy: queuePolicy,
    },
    instance_group: [{ name: `${name}_0`, kind: 'KIND_CPU', count: 1, gpus: [] }],
    default_model_filename: 'model.onnx',
  });

  it('HTTP: dims without the batch dimension when batching, max_batch_size as the queue batches', async () => {
    for (const [url, expected] of [
      ['/v2/models/identity/config', batched('identity', 8)],
      ['/v2/models/identity/versions/1/config', batched('identity', 8)],
      ['/v2/models/capped/config', batched('capped', 2)],
    ] as const) {
      const answer = await get(`${server.url}${url}`);
      assert.deepEqual([answer.status, answer.type, JSON.parse(answer.body)], [200, 'application/json', expected], url);
    }
  });

  it('HTTP: a model that cannot batch has max_batch_size 0, whole dims and no dynamic_batching; BYTES is TYPE_STRING', async () => {
    const config = JSON.parse((await get(`${server.url}/v2/models/fixed/config`)).body);
    assert.equal(config.max_batch_size, 0);
    assert.equal(config.dynamic_batching, undefined);
    assert.deepEqual(
      [config.input[0].data_type, config.input[0].dims, config.output[0].dims],
      ['TYPE_STRING', [2, 3], [2, 3]],
    );
  });

  it('HTTP: unknown and unavailable models answer as metadata does', async () => {
    const unknown = await get(`${server.url}/v2/models/nope/config`);
    assert.equal(unknown.status, 404);
    assert.ok(JSON.parse(unknown.body).error.startsWith("Request for unknown model: 'nope' is not found"));
    const broken = await get(`${server.url}/v2/models/broken/config`);
    assert.equal(broken.status, 503);
  });

  it('gRPC ModelConfig answers the same configuration (64-bit numbers as proto-loader gives them)', async () => {
    const { config } = await client.modelConfig({ name: 'capped' });
    const expected = batched('capped', 2);
    const numbers = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(numbers)
        : value !== null && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, numbers(v)]))
          : typeof value === 'string' && /^-?[0-9]+$/.test(value)
            ? Number(value)
            : value;
    const received = numbers(config) as Record<string, unknown>;
    // proto-loader adds the oneof's name beside the field it chose.
    assert.equal(received.scheduling_choice, 'dynamic_batching');
    assert.deepEqual((received.version_policy as Record<string, unknown>).policy_choice, 'all');
    delete received.scheduling_choice;
    delete (received.version_policy as Record<string, unknown>).policy_choice;
    assert.deepEqual(received, expected);
    await assertGrpcError(
      client.modelConfig({ name: 'capped', version: '4' }),
      status.NOT_FOUND,
      "Request for unknown model: 'capped' version 4 is not found; versions: 1",
    );
  });

  it('GET /v2 advertises model_configuration', async () => {
    assert.ok(JSON.parse((await get(`${server.url}/v2`)).body).extensions.includes('model_configuration'));
  });
});

describe('statistics extension over gRPC: ModelStatistics answers what GET /v2/models/{m}/stats does', () => {
  it('the same counters for a model, a version and every model', async () => {
    await postJson(`${server.url}/v2/models/identity/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
    });
    const http = JSON.parse((await get(`${server.url}/v2/models/identity/stats`)).body).model_stats;
    const grpc = (await client.modelStatistics({ name: 'identity' })).model_stats;
    const counters = (entry: Record<string, any>) => ({
      name: entry.name,
      version: entry.version,
      last_inference: Number(entry.last_inference),
      inference_count: Number(entry.inference_count),
      execution_count: Number(entry.execution_count),
      success: Number(entry.inference_stats.success.count),
      fail: Number(entry.inference_stats.fail.count),
      queue_ns: Number(entry.inference_stats.queue.ns),
      compute_infer_ns: Number(entry.inference_stats.compute_infer.ns),
    });
    assert.deepEqual(grpc.map(counters), http.map(counters));
    assert.ok(counters(http[0]).success >= 1);
    const version = (await client.modelStatistics({ name: 'identity', version: '1' })).model_stats;
    assert.deepEqual(version.map(counters), http.map(counters));
    const all = (await client.modelStatistics({})).model_stats;
    const allHttp = JSON.parse((await get(`${server.url}/v2/models/stats`)).body).model_stats;
    assert.deepEqual(
      all.map((entry) => `${entry.name}/${entry.version}`),
      allHttp.map((entry: { name: string; version: string }) => `${entry.name}/${entry.version}`),
    );
    // Every field the statistics extension lists, on both transports.
    const capped = JSON.parse((await get(`${server.url}/v2/models/capped/stats`)).body).model_stats[0];
    const zero = { count: 0, ns: 0 };
    const success = capped.inference_stats.success.count;
    assert.equal(success, 2);
    assert.deepEqual(
      [
        capped.inference_stats.compute_input,
        capped.inference_stats.compute_output,
        capped.inference_stats.cache_hit,
        capped.inference_stats.cache_miss,
        capped.memory_usage,
      ],
      [{ count: 2, ns: 0 }, { count: 2, ns: 0 }, zero, zero, []],
    );
    assert.equal(capped.batch_stats.length, 1);
    const [batch] = capped.batch_stats;
    assert.deepEqual(
      [batch.batch_size, batch.compute_infer.count, batch.compute_input, batch.compute_output],
      [2, 2, { count: 2, ns: 0 }, { count: 2, ns: 0 }],
    );
    assert.ok(batch.compute_infer.ns > 0);
    const [grpcCapped] = (await client.modelStatistics({ name: 'capped' })).model_stats;
    assert.deepEqual(
      grpcCapped.batch_stats.map((b) => [Number(b.batch_size), Number((b.compute_infer as { ns: string }).ns)]),
      [[2, batch.compute_infer.ns]],
    );
    assert.deepEqual(grpcCapped.memory_usage, []);
    assert.equal(Number(grpcCapped.inference_stats.compute_input.count), 2);
    await assertGrpcError(
      client.modelStatistics({ name: 'nope' }),
      status.NOT_FOUND,
      "Request for unknown model: 'nope' is not found; models served: broken, capped, constant, fixed, identity, misconfigured, scores",
    );
  });
});

describe('BYTES exactness: an element onnxruntime-node cannot carry as it came is 400, never altered', () => {
  const WHY = 'onnxruntime-node carries BYTES elements as text, so only UTF-8 without NUL bytes passes unchanged';
  const elements = (middle: Uint8Array) => [
    Buffer.from('a'),
    Buffer.from('b'),
    Buffer.from('c'),
    middle,
    Buffer.from('é'),
    Buffer.from(''),
  ];
  /** BYTES elements as the binary extension lays them out: a 4-byte little-endian length, then the bytes. */
  const blobOf = (items: Uint8Array[]) =>
    Buffer.concat(items.flatMap((item) => [Buffer.from(Uint32Array.of(item.length).buffer), item]));
  const notUtf8 = Uint8Array.of(0x68, 0xff, 0xfe);
  const withNul = Buffer.from('he\0llo');

  it('HTTP JSON: a NUL byte or a lone surrogate, with the input and the element named', async () => {
    const url = `${server.url}/v2/models/fixed/infer`;
    const send = (middle: string) =>
      postJson(
        url,
        `{"inputs":[{"name":"text","datatype":"BYTES","shape":[2,3],"data":["a","b","c",${middle},"é",""]}]}`,
      );
    const nul = await send('"he\\u0000llo"');
    assert.deepEqual(
      [nul.status, nul.body],
      [400, { error: `inputs[0] (text) BYTES element 3 holds a NUL byte at character 2; ${WHY}` }],
    );
    const surrogate = await send('"x\\ud800"');
    assert.deepEqual(
      [surrogate.status, surrogate.body],
      [
        400,
        { error: `inputs[0] (text) BYTES element 3 holds a lone UTF-16 surrogate, which has no UTF-8 form; ${WHY}` },
      ],
    );
    const exact = await send('"he\\u00e9llo \\ud83d\\ude00"');
    assert.equal(exact.status, 200);
    assert.deepEqual(exact.body.outputs[0].data, ['a', 'b', 'c', 'heéllo 😀', 'é', '']);
  });

  it('HTTP binary: bytes that are not UTF-8, and a NUL byte', async () => {
    const send = async (middle: Uint8Array) => {
      const blob = blobOf(elements(middle));
      const header = Buffer.from(
        JSON.stringify({
          inputs: [{ name: 'text', datatype: 'BYTES', shape: [2, 3], parameters: { binary_data_size: blob.length } }],
        }),
      );
      const answer = await rawPost(`${server.url}/v2/models/fixed/infer`, Buffer.concat([header, blob]), {
        'content-type': 'application/octet-stream',
        [HEADER_LENGTH_HEADER]: String(header.length),
      });
      return [answer.status, JSON.parse(answer.body.toString())];
    };
    assert.deepEqual(await send(notUtf8), [
      400,
      { error: `inputs[0] ("text") shape [2,3]: BYTES element 3 is not valid UTF-8; ${WHY}` },
    ]);
    assert.deepEqual(await send(withNul), [
      400,
      { error: `inputs[0] (text) BYTES element 3 holds a NUL byte at character 2; ${WHY}` },
    ]);
  });

  it('gRPC: typed bytes_contents and raw contents alike', async () => {
    const typed = (middle: Uint8Array) => ({
      model_name: 'fixed',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [2, 3], contents: { bytes_contents: elements(middle) } }],
    });
    await assertGrpcError(
      client.modelInfer(typed(notUtf8)),
      status.INVALID_ARGUMENT,
      `inputs[0] ("text"): contents.bytes_contents BYTES element 3 is not valid UTF-8; ${WHY}`,
    );
    await assertGrpcError(
      client.modelInfer(typed(withNul)),
      status.INVALID_ARGUMENT,
      `inputs[0] (text) BYTES element 3 holds a NUL byte at character 2; ${WHY}`,
    );
    await assertGrpcError(
      client.modelInfer({
        model_name: 'fixed',
        inputs: [{ name: 'text', datatype: 'BYTES', shape: [2, 3] }],
        raw_input_contents: [blobOf(elements(notUtf8))],
      }),
      status.INVALID_ARGUMENT,
      `raw_input_contents[0] (input "text") shape [2,3]: BYTES element 3 is not valid UTF-8; ${WHY}`,
    );
  });

  it('in-process: infer() refuses a NUL byte too', async () => {
    const model = await loadModel({
      path: path.join(dir, 'fixed', '1', 'model.onnx'),
      config: { instances: 1, session: { intra_op_threads: 1 } },
    });
    try {
      await assert.rejects(
        model.infer({ text: { data: ['a', 'b', 'c', 'he\0llo', 'é', ''], shape: [2, 3] } }),
        (error) =>
          isServeError(error, 'INVALID_ARGUMENT') &&
          error.message === `inputs[0] (text) BYTES element 3 holds a NUL byte at character 2; ${WHY}`,
      );
    } finally {
      await model.close();
    }
  });
});

describe('a model without inputs runs with "inputs": []', () => {
  it('HTTP, gRPC and in-process answer its constant; a model with inputs names the one missing', async () => {
    const http = await postJson(`${server.url}/v2/models/constant/infer`, { inputs: [] });
    assert.deepEqual(
      [http.status, http.body.outputs],
      [200, [{ name: 'y', datatype: 'FP32', shape: [2], data: [1.5, 2.5] }]],
    );
    const grpc = await client.modelInfer({ model_name: 'constant', inputs: [] });
    assert.deepEqual(
      grpc.outputs.map((o) => [o.name, o.shape.map(Number)]),
      [['y', [2]]],
    );
    assert.ok(Buffer.from(grpc.raw_output_contents[0]).equals(Buffer.from(Float32Array.of(1.5, 2.5).buffer)));
    const model = await loadModel({
      path: path.join(dir, 'constant', '1', 'model.onnx'),
      config: { instances: 1, session: { intra_op_threads: 1 } },
    });
    try {
      assert.deepEqual(Array.from((await model.infer({})).outputs.y.data as Float32Array), [1.5, 2.5]);
    } finally {
      await model.close();
    }
    const missing = await postJson(`${server.url}/v2/models/identity/infer`, { inputs: [] });
    assert.deepEqual(
      [missing.status, missing.body],
      [400, { error: 'missing input "x" for model identity; its inputs are: x' }],
    );
  });
});

describe('classification extension: parameters.classification (HTTP) and class_count (gRPC)', () => {
  const x = [0.1, 0.7, 0.2, 0.9, 5, -1, 3, 4];
  it('HTTP: the top N per batch item as "value:index:label", labels from label_filename', async () => {
    const answer = await postJson(`${server.url}/v2/models/scores/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: x }],
      outputs: [{ name: 'y', parameters: { classification: 3 } }],
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const value = (v: number) => Math.fround(v).toFixed(9);
    // Index 2 has an empty line for a label: no label, as Triton writes it.
    assert.deepEqual(answer.body.outputs, [
      {
        name: 'y',
        datatype: 'BYTES',
        shape: [2, 3],
        data: [
          `${value(0.9)}:3:bird`,
          `${value(0.7)}:1:dog`,
          `${value(0.2)}:2`,
          `${value(5)}:0:cat`,
          `${value(4)}:3:bird`,
          `${value(3)}:2`,
        ],
      },
    ]);
    const config = JSON.parse((await get(`${server.url}/v2/models/scores/config`)).body);
    assert.equal(config.output[0].label_filename, 'labels.txt');
    assert.ok(JSON.parse((await get(`${server.url}/v2`)).body).extensions.includes('classification'));
  });

  it('gRPC: parameters.classification as int64 (what tritonclient sends for class_count) answers the same strings, raw', async () => {
    const answer = await client.modelInfer({
      model_name: 'scores',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: x } }],
      outputs: [{ name: 'y', parameters: { classification: { int64_param: 10 } } }],
    });
    assert.deepEqual([answer.outputs[0].datatype, answer.outputs[0].shape.map(Number)], ['BYTES', [2, 4]]);
    const decoded = decodeTensorBlob(answer.raw_output_contents[0], { datatype: 'BYTES', shape: [2, 4] }, 'y', '');
    assert.deepEqual(
      (decoded as string[]).map((entry) => entry.split(':').slice(1).join(':')),
      ['3:bird', '1:dog', '2', '0:cat', '0:cat', '3:bird', '2', '1:dog'],
    );
  });

  it('a count that is not a positive integer is 400 naming the output', async () => {
    const answer = await postJson(`${server.url}/v2/models/scores/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }],
      outputs: [{ name: 'y', parameters: { classification: 0 } }],
    });
    assert.deepEqual(
      [answer.status, answer.body],
      [
        400,
        {
          error: 'outputs[0] (y): parameters.classification must be a positive integer (the number of classes), got 0',
        },
      ],
    );
  });
});

/**
 * Limits on what one request may ask: each violation is a 4xx whose message names the limit and its
 * flag, over HTTP, over gRPC (RESOURCE_EXHAUSTED) and in-process (PAYLOAD_TOO_LARGE) alike. Names
 * from the URL never reach an object's prototype, and JSON keys never pollute one.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../../src/index.js';
import { createInferenceClient, type InferenceClient } from '../../src/grpc/client.js';
import type { RunningServer } from '../../src/server/start.js';
import { checkBytesElements, DEFAULT_REQUEST_LIMITS } from '../../src/core/request-limits.js';
import { writePassThroughModel } from '../helpers/onnx-builder.js';
import { OCR_ASSETS } from '../helpers/ocr.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

const MODEL = 'ch_ppocr_mobile_v2.0_cls_infer';
const input = (name: string, shape: number[]) => ({
  name,
  datatype: 'FP32',
  shape,
  data: new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5),
});

const LIMITS = { maxTensors: 1, maxTensorElements: 10_000, maxHeaderSize: 2048, maxBytesElementSize: 8 };
const TOO_MANY = 'the request has 2 inputs; the limit is 1 (--max-tensors)';
const TOO_BIG =
  'inputs[0] (x) has shape [1, 3, 48, 192], 27648 elements; the limit is 10000 per tensor (--max-tensor-elements)';
const BOMB =
  'inputs[0] (x) has shape [1000000, 3, 48, 192], 27648000000 elements; the limit is 10000 per tensor (--max-tensor-elements)';
const LONG_TEXT = 'inputs[0] (text) element 1 is 9 bytes; the limit is 8 per BYTES element (--max-bytes-element-size)';

let dir: string;
/** A model with one BYTES input, for the element limit. */
let textModel: string;
let server: RunningServer;
let grpc: InferenceClient;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-limits-'));
  textModel = path.join(dir, 'text.onnx');
  await writePassThroughModel(textModel, [{ input: 'text', output: 'same', datatype: 'BYTES', shape: ['batch'] }]);
  server = await startTestServer({
    modelFiles: [path.join(OCR_ASSETS, `${MODEL}.onnx`)],
    limits: LIMITS,
    grpcPort: 0,
  });
  grpc = createInferenceClient(server.grpc!.address);
});
after(async () => {
  grpc?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

it('tensors per request and elements per tensor: 413 naming the limit', async () => {
  const two = await postJson(`${server.url}/v2/models/${MODEL}/infer`, {
    inputs: [input('x', [1, 3, 48, 8]), input('y', [1])],
  });
  assert.deepEqual([two.status, two.body], [413, { error: TOO_MANY }]);
  const big = await postJson(`${server.url}/v2/models/${MODEL}/infer`, { inputs: [input('x', [1, 3, 48, 192])] });
  assert.deepEqual([big.status, big.body], [413, { error: TOO_BIG }]);
  const fits = await postJson(`${server.url}/v2/models/${MODEL}/infer`, { inputs: [input('x', [1, 3, 48, 64])] });
  assert.equal(fits.status, 200);
});

it('header size: 431 with a JSON error naming the limit', async () => {
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const request = httpRequest(
      `${server.url}/v2/health/live`,
      { headers: { 'x-padding': 'a'.repeat(4096) } },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode!, body: text }));
      },
    );
    request.on('error', reject);
    request.end();
  });
  assert.equal(status, 431);
  assert.deepEqual(JSON.parse(body), {
    error: 'the request line and headers are larger than the limit of 2048 bytes (--max-header-size)',
  });
});

it('a model name over 256 characters: 414, and a malformed URL: 400, both in the JSON error shape', async () => {
  const long = 'm'.repeat(257);
  for (const route of [
    `/v2/models/${long}`,
    `/v2/models/${long}/ready`,
    `/v2/models/cls/versions/${'9'.repeat(300)}`,
  ]) {
    const answer = await getJson(`${server.url}${route}`);
    const shown = route.length > 80 ? `${route.slice(0, 80)}…` : route;
    assert.deepEqual(
      [answer.status, answer.body],
      [414, { error: `URL ${shown} has a path segment (a model name or version) longer than 256 characters` }],
    );
  }
  const fits = await getJson(`${server.url}/v2/models/${'m'.repeat(256)}`);
  assert.equal(fits.status, 404, 'a 256-character name is looked up (and is unknown)');
  const malformed = await getJson(`${server.url}/v2/models/%zz`);
  assert.deepEqual(
    [malformed.status, malformed.body],
    [400, { error: 'URL /v2/models/%zz is malformed: every % must start an escape of two hex digits, such as %2F' }],
  );
});

it('BYTES elements over the limit are refused naming it', () => {
  const limits = { ...DEFAULT_REQUEST_LIMITS, maxBytesElementSize: 4 };
  const tensor = { name: 'text', datatype: 'BYTES' as const, shape: [2], data: ['abcd', 'héllo'] };
  assert.throws(() => checkBytesElements([tensor], limits), {
    message: 'inputs[0] (text) element 1 is 6 bytes; the limit is 4 per BYTES element (--max-bytes-element-size)',
  });
});

it('prototype keys: as a model name they are unknown models; in JSON they pollute nothing', async () => {
  for (const name of ['__proto__', 'constructor', 'hasOwnProperty']) {
    const meta = await getJson(`${server.url}/v2/models/${name}`);
    assert.deepEqual(
      [meta.status, meta.body],
      [404, { error: `Request for unknown model: '${name}' is not found; models served: ${MODEL}` }],
    );
  }
  const polluting = `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"inputs":[${JSON.stringify(input('x', [1, 3, 48, 8]))}]}`;
  const response = await postJson(`${server.url}/v2/models/${MODEL}/infer`, polluting);
  assert.deepEqual([response.status, response.body.outputs?.[0]?.shape], [200, [1, 2]], JSON.stringify(response.body));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
});

describe('the same limits on every transport', () => {
  /** Rejects with RESOURCE_EXHAUSTED (gRPC's payload too large) and exactly this message. */
  async function assertExhausted(call: Promise<unknown>, message: string): Promise<void> {
    await assert.rejects(call, (error: ServiceError) => {
      assert.deepEqual([status[error.code], error.details], ['RESOURCE_EXHAUSTED', message]);
      return true;
    });
  }
  const grpcInput = (name: string, shape: number[]) => ({
    name,
    datatype: 'FP32',
    shape,
    contents: { fp32_contents: new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) },
  });

  it('gRPC ModelInfer: tensors per request, elements per tensor, and a shape bomb with no data', async () => {
    await assertExhausted(
      grpc.modelInfer({ model_name: MODEL, inputs: [grpcInput('x', [1, 3, 48, 8]), grpcInput('y', [1])] }),
      TOO_MANY,
    );
    await assertExhausted(grpc.modelInfer({ model_name: MODEL, inputs: [grpcInput('x', [1, 3, 48, 192])] }), TOO_BIG);
    // The shape alone is refused: no buffer is sized from it.
    const bomb = { name: 'x', datatype: 'FP32', shape: [1_000_000, 3, 48, 192], contents: { fp32_contents: [] } };
    await assertExhausted(grpc.modelInfer({ model_name: MODEL, inputs: [bomb] }), BOMB);
    const fits = await grpc.modelInfer({ model_name: MODEL, inputs: [grpcInput('x', [1, 3, 48, 64])] });
    assert.deepEqual(fits.outputs[0].shape, ['1', '2']);
  });

  it('gRPC ModelInfer: BYTES elements over the limit', async () => {
    const textServer = await startTestServer({ modelFiles: [textModel], limits: LIMITS, grpcPort: 0 });
    const client = createInferenceClient(textServer.grpc!.address);
    try {
      const text = (elements: string[]) => ({
        model_name: 'text',
        inputs: [
          {
            name: 'text',
            datatype: 'BYTES',
            shape: [elements.length],
            contents: { bytes_contents: elements.map((e) => Buffer.from(e)) },
          },
        ],
      });
      await assertExhausted(client.modelInfer(text(['short', 'too long!'])), LONG_TEXT);
      const fits = await client.modelInfer(text(['short', 'fits 8 b']));
      assert.deepEqual(fits.outputs[0].shape, ['2']);
    } finally {
      client.close();
      await textServer.close();
    }
  });

  it('in-process infer(): the defaults, or the limits given to loadModel', async () => {
    const model = await loadModel({ path: textModel, limits: { maxBytesElementSize: 8, maxTensorElements: 4 } });
    try {
      await assert.rejects(model.infer({ text: { datatype: 'BYTES', shape: [2], data: ['short', 'too long!'] } }), {
        code: 'PAYLOAD_TOO_LARGE',
        message: LONG_TEXT,
      });
      await assert.rejects(model.infer({ text: { datatype: 'BYTES', shape: [5], data: ['a', 'b', 'c', 'd', 'e'] } }), {
        code: 'PAYLOAD_TOO_LARGE',
        message: 'inputs[0] (text) has shape [5], 5 elements; the limit is 4 per tensor (--max-tensor-elements)',
      });
      const fits = await model.infer({ text: { datatype: 'BYTES', shape: [2], data: ['short', 'fits 8 b'] } });
      assert.deepEqual(fits.outputs.same.data, ['short', 'fits 8 b']);
    } finally {
      await model.close();
    }
    const defaults = await loadModel(textModel);
    try {
      const long = 'x'.repeat(DEFAULT_REQUEST_LIMITS.maxBytesElementSize + 1);
      await assert.rejects(defaults.infer({ text: { datatype: 'BYTES', shape: [1], data: [long] } }), {
        code: 'PAYLOAD_TOO_LARGE',
        message: `inputs[0] (text) element 0 is ${long.length} bytes; the limit is ${DEFAULT_REQUEST_LIMITS.maxBytesElementSize} per BYTES element (--max-bytes-element-size)`,
      });
    } finally {
      await defaults.close();
    }
  });
});

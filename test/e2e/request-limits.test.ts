/**
 * Limits on what one request may ask: each violation is a 4xx whose message names the limit and its
 * flag. Names from the URL never reach an object's prototype, and JSON keys never pollute one.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { after, before, it } from 'node:test';
import type { RunningServer } from '../../src/server/start.js';
import { checkBytesElements, DEFAULT_REQUEST_LIMITS } from '../../src/core/request-limits.js';
import { OCR_ASSETS } from '../helpers/ocr.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

const MODEL = 'ch_ppocr_mobile_v2.0_cls_infer';
const input = (name: string, shape: number[]) => ({
  name,
  datatype: 'FP32',
  shape,
  data: new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5),
});

let server: RunningServer;
before(async () => {
  server = await startTestServer({
    modelFiles: [path.join(OCR_ASSETS, `${MODEL}.onnx`)],
    limits: { maxTensors: 1, maxTensorElements: 10_000, maxHeaderSize: 2048 },
  });
});
after(async () => server?.close());

it('tensors per request and elements per tensor: 413 naming the limit', async () => {
  const two = await postJson(`${server.url}/v2/models/${MODEL}/infer`, {
    inputs: [input('x', [1, 3, 48, 8]), input('y', [1])],
  });
  assert.deepEqual(
    [two.status, two.body],
    [413, { error: 'the request has 2 inputs; the limit is 1 (--max-tensors)' }],
  );
  const big = await postJson(`${server.url}/v2/models/${MODEL}/infer`, { inputs: [input('x', [1, 3, 48, 192])] });
  assert.deepEqual(
    [big.status, big.body],
    [
      413,
      {
        error:
          'inputs[0] (x) has shape [1, 3, 48, 192], 27648 elements; the limit is 10000 per tensor (--max-tensor-elements)',
      },
    ],
  );
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
    assert.deepEqual([meta.status, meta.body], [404, { error: `unknown model "${name}"; models served: ${MODEL}` }]);
  }
  const polluting = `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"inputs":[${JSON.stringify(input('x', [1, 3, 48, 8]))}]}`;
  const response = await postJson(`${server.url}/v2/models/${MODEL}/infer`, polluting);
  assert.deepEqual([response.status, response.body.outputs?.[0]?.shape], [200, [1, 2]], JSON.stringify(response.body));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
});

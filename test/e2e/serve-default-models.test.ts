/**
 * The embedded default repository, served for real over HTTP on a free loopback port.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/server/start.js';
import { ctcDecode, recognizerInput, renderTextLine } from '../helpers/ocr.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

let server: RunningServer;

/** Whether onnxruntime-node's CUDA provider library is installed (its npm package alone lacks it). */
const CUDA_LIBRARY_INSTALLED = existsSync(
  path.join(
    path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node')),
    '..',
    'bin',
    'napi-v6',
    process.platform,
    process.arch,
    'libonnxruntime_providers_cuda.so',
  ),
);

before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server?.close();
});

const zeros = (n: number) => new Array<number>(n).fill(0);
const orientationRequest = (extra: Record<string, unknown> = {}) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: zeros(3 * 48 * 192) }],
  ...extra,
});

describe('health and server metadata', () => {
  it('is live and ready once the three models are warm', async () => {
    const live = await getJson(`${server.url}/v2/health/live`);
    assert.deepEqual([live.status, live.body], [200, { live: true }]);
    assert.match(live.headers.get('content-type') ?? '', /^application\/json/);
    const ready = await getJson(`${server.url}/v2/health/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { ready: true });
  });

  it('describes itself', async () => {
    const { status, body } = await getJson(`${server.url}/v2`);
    assert.equal(status, 200);
    assert.equal(body.name, 'onnx-serve');
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    assert.ok(body.extensions.includes('binary_tensor_data'));
  });
});

describe('model metadata', () => {
  const expected: Record<string, { inputs: unknown[]; outputs: unknown[] }> = {
    'text-detector': {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }],
      outputs: [{ name: 'sigmoid_0.tmp_0', datatype: 'FP32', shape: [-1, 1, -1, -1] }],
    },
    'text-recognizer': {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 48, -1] }],
      outputs: [{ name: 'softmax_11.tmp_0', datatype: 'FP32', shape: [-1, -1, 6625] }],
    },
    'text-orientation': {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }],
      outputs: [{ name: 'softmax_0.tmp_0', datatype: 'FP32', shape: [-1, 2] }],
    },
  };

  for (const [name, io] of Object.entries(expected)) {
    it(`${name}: inputs, outputs, provider and warmup`, async () => {
      const { status, body } = await getJson(`${server.url}/v2/models/${name}`);
      assert.equal(status, 200);
      assert.equal(body.name, name);
      assert.deepEqual(body.versions, ['1']);
      assert.equal(body.platform, 'onnx_onnxv1');
      assert.deepEqual(body.inputs, io.inputs);
      assert.deepEqual(body.outputs, io.outputs);
      assert.equal(body.state, 'READY');
      // Host-dependent, so the host is checked rather than assumed: the models ask for CUDA first.
      if (CUDA_LIBRARY_INSTALLED) {
        // CUDA in use, or its failure (no GPU, no CUDA 12 / cuDNN 9) named before landing on the CPU.
        if (body.execution_provider !== 'cuda') {
          assert.equal(body.execution_provider, 'cpu');
          assert.equal(body.runtime.skipped_providers[0].provider, 'cuda');
        }
      } else {
        // The CPU-only package: the fallback must say the library is missing, and land on the CPU.
        assert.equal(body.execution_provider, 'cpu');
        assert.equal(body.runtime.skipped_providers[0].provider, 'cuda');
        assert.match(body.runtime.skipped_providers[0].error, /libonnxruntime_providers_cuda\.so is not installed/);
      }
      assert.ok(body.runtime.warmup_runs > 0);
      assert.equal(body.runtime.warmup_warning, undefined);

      const versioned = await getJson(`${server.url}/v2/models/${name}/versions/1`);
      assert.equal(versioned.status, 200);
      assert.deepEqual(versioned.body.inputs, io.inputs);

      const ready = await getJson(`${server.url}/v2/models/${name}/ready`);
      assert.equal(ready.status, 200);
      assert.equal(ready.body.ready, true);
      const readyVersion = await getJson(`${server.url}/v2/models/${name}/versions/1/ready`);
      assert.equal(readyVersion.status, 200);
    });
  }
});

describe('inference', () => {
  for (const text of ['Hello World 2026', 'onnx-serve 0.1']) {
    it(`reads a rendered line "${text}" through text-recognizer`, async () => {
      const input = await recognizerInput(await renderTextLine(text));
      const { status, body } = await postJson(`${server.url}/v2/models/text-recognizer/infer`, {
        id: 'line-1',
        inputs: [{ name: 'x', datatype: 'FP32', shape: input.shape, data: Array.from(input.data) }],
      });
      assert.equal(status, 200, JSON.stringify(body).slice(0, 300));
      assert.equal(body.model_name, 'text-recognizer');
      assert.equal(body.model_version, '1');
      assert.equal(body.id, 'line-1');
      const [output] = body.outputs;
      assert.equal(output.name, 'softmax_11.tmp_0');
      assert.equal(output.datatype, 'FP32');
      const [batch, steps, classes] = output.shape;
      assert.equal(batch, 1);
      assert.equal(classes, 6625);
      assert.equal(output.data.length, steps * classes);
      assert.equal(ctcDecode(output.data, steps, classes), text);
    });
  }

  it('classifies through text-orientation with nested data and an outputs selection', async () => {
    const nested = [
      [zeros(48).map(() => zeros(192)), zeros(48).map(() => zeros(192)), zeros(48).map(() => zeros(192))],
    ];
    const { status, body } = await postJson(`${server.url}/v2/models/text-orientation/versions/1/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: nested }],
      outputs: [{ name: 'softmax_0.tmp_0' }],
    });
    assert.equal(status, 200);
    assert.deepEqual(body.outputs[0].shape, [1, 2]);
    const [p0, p180] = body.outputs[0].data;
    assert.ok(Math.abs(p0 + p180 - 1) < 1e-5, 'softmax sums to 1');
  });

  it('runs a batch of 2 in one request', async () => {
    const { status, body } = await postJson(`${server.url}/v2/models/text-orientation/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3, 48, 192], data: zeros(2 * 3 * 48 * 192) }],
    });
    assert.equal(status, 200);
    assert.deepEqual(body.outputs[0].shape, [2, 2]);
  });
});

describe('bad input gets a clear answer and the server keeps serving', () => {
  const url = () => `${server.url}/v2/models/text-orientation/infer`;
  const cases: Array<{
    name: string;
    body: unknown;
    status: number;
    message: RegExp;
    headers?: Record<string, string>;
  }> = [
    {
      name: 'malformed JSON',
      body: '{"inputs": [',
      status: 400,
      message: /malformed JSON/,
    },
    {
      name: 'unknown input name',
      body: { inputs: [{ name: 'y', datatype: 'FP32', shape: [1, 3, 48, 192], data: zeros(27648) }] },
      status: 400,
      message: /unknown input "y" for model text-orientation; its inputs are: x/,
    },
    {
      name: 'missing input',
      body: { inputs: [] },
      status: 400,
      message: /inputs/,
    },
    {
      name: 'wrong datatype',
      body: { inputs: [{ name: 'x', datatype: 'INT64', shape: [1, 3, 48, 192], data: zeros(27648) }] },
      status: 400,
      message: /input x of model text-orientation expects FP32, got INT64/,
    },
    {
      name: 'unknown datatype',
      body: { inputs: [{ name: 'x', datatype: 'FLOAT32', shape: [1, 3, 48, 192], data: zeros(27648) }] },
      status: 400,
      message: /datatype must be one of .*got "FLOAT32"/,
    },
    {
      name: 'shape breaking a static dimension',
      body: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4, 48, 192], data: zeros(4 * 48 * 192) }] },
      status: 400,
      message: /inputs\[0\]\.shape\[1\] must be 3 \(model text-orientation, input x\), got 4/,
    },
    {
      name: 'wrong rank',
      body: { inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 48, 192], data: zeros(27648) }] },
      status: 400,
      message: /input x of model text-orientation has rank 4/,
    },
    {
      name: 'data length not the product of the shape',
      body: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: zeros(100) }] },
      status: 400,
      message: /inputs\[0\] \("x"\): data has 100 elements but shape \[1,3,48,192\] needs 27648/,
    },
    {
      name: 'non-numeric value',
      body: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: ['a', ...zeros(27647)] }] },
      status: 400,
      message: /inputs\[0\] \("x"\): element 0/,
    },
    {
      name: 'unknown requested output',
      body: { ...orientationRequest(), outputs: [{ name: 'logits' }] },
      status: 400,
      message: /unknown output "logits" for model text-orientation; its outputs are: softmax_0\.tmp_0/,
    },
    {
      // The image pipelines' reduced outputs (src/runtime/output-reductions.ts) are not for clients.
      name: 'a reduction the server computes for its own pipelines',
      body: { ...orientationRequest(), outputs: [{ name: 'softmax_0.tmp_0#argmax' }] },
      status: 400,
      message: /unknown output "softmax_0\.tmp_0#argmax" for model text-orientation; its outputs are: softmax_0\.tmp_0/,
    },
    {
      name: 'empty body',
      body: '',
      status: 400,
      message: /request body is empty/,
    },
  ];

  for (const c of cases) {
    it(`${c.name} → ${c.status} naming the problem, then a good request succeeds`, async () => {
      const bad = await postJson(url(), c.body, c.headers);
      assert.equal(bad.status, c.status, JSON.stringify(bad.body));
      assert.equal(typeof bad.body.error, 'string');
      assert.match(bad.body.error, c.message);
      const good = await postJson(url(), orientationRequest());
      assert.equal(good.status, 200);
    });
  }

  it('an onnxruntime failure → 500 with its message, then the model still serves', async () => {
    // The detector needs sides that are multiples of 32: 33×33 passes validation but fails inside the graph.
    const side = 33;
    const bad = await postJson(`${server.url}/v2/models/text-detector/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, side, side], data: zeros(3 * side * side) }],
    });
    assert.equal(bad.status, 500);
    assert.match(bad.body.error, /^onnxruntime failed: Non-zero status code returned while running/);
    const good = await postJson(`${server.url}/v2/models/text-detector/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 64, 64], data: zeros(3 * 64 * 64) }],
    });
    assert.equal(good.status, 200);
    assert.deepEqual(good.body.outputs[0].shape, [1, 1, 64, 64]);
  });

  it('unknown model → 404 listing the models', async () => {
    const { status, body } = await postJson(`${server.url}/v2/models/nope/infer`, orientationRequest());
    assert.equal(status, 404);
    assert.match(
      body.error,
      /^Request for unknown model: 'nope' is not found; models served: ocr, text-detector, text-orientation, text-recognizer$/,
    );
  });

  it('unknown version → 404 listing the versions', async () => {
    const { status, body } = await postJson(
      `${server.url}/v2/models/text-orientation/versions/7/infer`,
      orientationRequest(),
    );
    assert.equal(status, 404);
    assert.match(body.error, /^Request for unknown model: 'text-orientation' version 7 is not found; versions: 1$/);
    assert.equal((await getJson(`${server.url}/v2/models/text-orientation/versions/7`)).status, 404);
  });

  it('unknown route → 404 with a JSON error', async () => {
    const { status, body } = await getJson(`${server.url}/v3/whatever`);
    assert.equal(status, 404);
    assert.match(body.error, /no route GET \/v3\/whatever/);
  });
});

describe('bounds on what one request may ask', () => {
  it('the recognizer and detector refuse a dimension over their config.yaml bound, before decoding', async () => {
    const ask = (model: string, shape: number[]) =>
      postJson(`${server.url}/v2/models/${model}/infer`, {
        inputs: [{ name: 'x', datatype: 'FP32', shape, data: [] }],
      });
    assert.deepEqual(await ask('text-recognizer', [1, 3, 48, 51_200]).then((r) => [r.status, r.body]), [
      400,
      {
        error:
          'inputs[0].shape[3] is 51200, above the bound of 3200 for that dimension (model text-recognizer, input x, config.yaml input[0].max_dims[3]); send a smaller tensor or split it',
      },
    ]);
    const detector = await ask('text-detector', [1, 3, 640, 4096]);
    assert.equal(detector.status, 400);
    assert.match(detector.body.error, /^inputs\[0\]\.shape\[3\] is 4096, above the bound of 1280/);
    const batch = await ask('text-detector', [5, 3, 64, 64]);
    assert.match(batch.body.error, /^inputs\[0\]\.shape\[0\] is 5, above the bound of 4 /);
  });
});

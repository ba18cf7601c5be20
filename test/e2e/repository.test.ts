/**
 * A Triton-style repository with good, broken and misconfigured models: one bad model never takes
 * the others down, its reason is visible, and readiness follows the strict/non-strict policy.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/server/start.js';
import { OCR_ASSETS } from '../helpers/ocr.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

const CLS = path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const request = (shape = [1, 3, 48, 192]) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape, data: new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) }],
});

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-repo-'));
  // good: two versions, each its own file
  for (const version of ['1', '2']) {
    await mkdir(path.join(dir, 'good', version), { recursive: true });
    await copyFile(CLS, path.join(dir, 'good', version, 'model.onnx'));
  }
  await writeFile(
    path.join(dir, 'good', 'config.yaml'),
    'instances: 1\nsession:\n  intra_op_threads: 1\n  graph_optimization_level: extended\nwarmup:\n  runs: 2\n  dims: { p2o.DynamicDimension.1: 48, p2o.DynamicDimension.2: 192 }\n',
  );
  // ignored folders: not numeric, or starting with 0 (Triton's rule)
  await mkdir(path.join(dir, 'good', '01'), { recursive: true });
  await copyFile(CLS, path.join(dir, 'good', '01', 'model.onnx'));
  // broken: a file that is not an ONNX model
  await mkdir(path.join(dir, 'broken', '1'), { recursive: true });
  await writeFile(path.join(dir, 'broken', '1', 'model.onnx'), 'this is not a model');
  // misconfigured: a typo in config.yaml
  await mkdir(path.join(dir, 'misconfigured', '1'), { recursive: true });
  await copyFile(CLS, path.join(dir, 'misconfigured', '1', 'model.onnx'));
  await writeFile(path.join(dir, 'misconfigured', 'config.yaml'), 'sesion:\n  intra_op_threads: 1\n');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('strict readiness (default)', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ modelRepository: dir });
  });
  after(async () => server?.close());

  it('is live but not ready while a model is unavailable', async () => {
    assert.equal((await getJson(`${server.url}/v2/health/live`)).status, 200);
    const ready = await getJson(`${server.url}/v2/health/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.body, { ready: false });
  });

  it('serves every version of the good model, the newest by default', async () => {
    const meta = await getJson(`${server.url}/v2/models/good`);
    assert.equal(meta.status, 200);
    assert.deepEqual(meta.body.versions, ['1', '2']);
    assert.equal(meta.body.runtime.version, '2');
    assert.equal(meta.body.runtime.intra_op_threads, 1);
    assert.equal(meta.body.runtime.graph_optimization_level, 'extended');
    assert.equal(meta.body.runtime.warmup_runs, 2);

    const latest = await postJson(`${server.url}/v2/models/good/infer`, request());
    assert.equal(latest.status, 200);
    assert.equal(latest.body.model_version, '2');
    const first = await postJson(`${server.url}/v2/models/good/versions/1/infer`, request());
    assert.equal(first.status, 200);
    assert.equal(first.body.model_version, '1');
    assert.deepEqual(first.body.outputs[0].data, latest.body.outputs[0].data);
    assert.equal((await getJson(`${server.url}/v2/models/good/versions/01`)).status, 404);
  });

  it('reports the broken model unavailable with its reason', async () => {
    const ready = await getJson(`${server.url}/v2/models/broken/ready`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.ready, false);
    assert.equal(ready.body.state, 'UNAVAILABLE');
    assert.match(ready.body.reason, /protobuf parsing failed|Failed to load model/i);

    const meta = await getJson(`${server.url}/v2/models/broken`);
    assert.equal(meta.status, 503);
    assert.match(
      meta.body.error,
      /^Request for unknown model: 'broken' version 1 is not at ready state; it is unavailable: /,
    );

    const infer = await postJson(`${server.url}/v2/models/broken/infer`, request());
    assert.equal(infer.status, 503);
    assert.match(
      infer.body.error,
      /^Request for unknown model: 'broken' version 1 is not at ready state; it is unavailable/,
    );
  });

  it('names the unknown key of a misconfigured model', async () => {
    const meta = await getJson(`${server.url}/v2/models/misconfigured`);
    assert.equal(meta.status, 503);
    assert.match(meta.body.error, /unknown key "sesion" \(allowed: .*session/);
    const infer = await postJson(`${server.url}/v2/models/misconfigured/infer`, request());
    assert.equal(infer.status, 503);
  });
});

describe('non-strict readiness, quick mode and body limit', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({
      modelRepository: dir,
      modelFiles: [CLS],
      strictReadiness: false,
      bodyLimit: 200_000,
    });
  });
  after(async () => server?.close());

  it('is ready once loading is done, though some models failed', async () => {
    const ready = await getJson(`${server.url}/v2/health/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { ready: true });
  });

  it('serves a model file named after the file', async () => {
    const meta = await getJson(`${server.url}/v2/models/ch_ppocr_mobile_v2.0_cls_infer`);
    assert.equal(meta.status, 200);
    const infer = await postJson(`${server.url}/v2/models/ch_ppocr_mobile_v2.0_cls_infer/infer`, request());
    assert.equal(infer.status, 200);
  });

  it('refuses a body over the limit with 413 naming the limit, then serves', async () => {
    const big = await postJson(`${server.url}/v2/models/good/infer`, request([4, 3, 48, 192]));
    assert.equal(big.status, 413);
    assert.match(big.body.error, /larger than the limit of 200000 bytes/);
    assert.equal((await postJson(`${server.url}/v2/models/good/infer`, request())).status, 200);
  });
});

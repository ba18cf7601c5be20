import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import { notReady, ModelVersion, type Running } from '../../src/repository/model-version.js';
import { specsForFiles } from '../../src/repository/scan.js';
import { cpuBudget } from '../../src/runtime/cpu.js';
import { OCR_ASSETS } from '../helpers/ocr.js';

const [spec] = specsForFiles([path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx')]).specs;
// Stand-ins: the state machine only holds what it is given.
const running = { loaded: { provider: 'cpu' }, pool: {}, queue: {} } as unknown as Running;

it('a version is LOADING, then READY with its instances, or UNAVAILABLE with the reason', () => {
  const version = new ModelVersion(spec, cpuBudget());
  assert.deepEqual(version.status, { state: 'LOADING' });
  assert.equal(version.ready(), undefined);
  assert.equal(
    notReady(version).message,
    "Request for unknown model: 'ch_ppocr_mobile_v2.0_cls_infer' version 1 is not at ready state; it is still loading",
  );

  version.started(running);
  assert.equal(version.state, 'READY');
  assert.equal(version.ready(), version);
  assert.equal(version.queue, running.queue);
  assert.equal(version.reason, undefined);

  // A crash loop after loading: unavailable, but the instances stay for retire() to close.
  version.failed('crash loop');
  assert.deepEqual(version.status, { state: 'UNAVAILABLE', reason: 'crash loop', running });
  assert.equal(version.ready(), undefined);
  assert.equal(version.pool, running.pool);
  assert.equal(
    notReady(version).message,
    "Request for unknown model: 'ch_ppocr_mobile_v2.0_cls_infer' version 1 is not at ready state; it is unavailable: crash loop",
  );

  version.loading();
  assert.deepEqual(version.status, { state: 'LOADING' });
  assert.equal(version.pool, undefined);
});

it('a ready pipeline runs nothing of its own, so it cannot infer', () => {
  const version = new ModelVersion(spec, cpuBudget());
  version.pipelineReady();
  assert.deepEqual(version.status, { state: 'READY', pipeline: true });
  assert.equal(version.ready(), undefined);
  assert.equal(version.loaded, undefined);
});

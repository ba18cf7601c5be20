/**
 * The provider fallback as the log and the metadata tell it, on this CPU-only machine: models on the
 * default provider list (CUDA, then CPU) give one info line per server start, a model whose
 * config.yaml names CUDA gets a warning with the reason, and every model's metadata says which
 * provider it runs on and why CUDA was skipped.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/server/start.js';
import { capturingLogger } from '../helpers/log-capture.js';
import { passThroughModel, writeRepositoryModel } from '../helpers/onnx-builder.js';
import { getJson, startTestServer } from '../helpers/server.js';

const MODEL = passThroughModel([{ input: 'x', output: 'y', datatype: 'FP32', shape: ['batch', 4] }]);
const SMALL = 'instances: 1\nwarmup: { runs: 1 }\n';
const CUDA_REASON = /libonnxruntime_providers_cuda\.so is not installed/;

describe('execution provider fallback on a host without CUDA', () => {
  let dir: string;
  let server: RunningServer;
  const { log, lines } = capturingLogger();

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-providers-'));
    await writeRepositoryModel(dir, 'default-a', MODEL, `${SMALL}session: { intra_op_threads: 1 }\n`);
    await writeRepositoryModel(dir, 'default-b', MODEL, `${SMALL}session: { intra_op_threads: 1 }\n`);
    await writeRepositoryModel(
      dir,
      'asks-cuda',
      MODEL,
      `${SMALL}session: { intra_op_threads: 1, execution_providers: [cuda, cpu] }\n`,
    );
    server = await startTestServer({ modelRepository: dir, logger: log });
  });

  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const providerLines = () => lines.filter((line) => line.provider === 'cuda');

  it('models on the default list: one info line for the whole start, no warning', () => {
    const info = providerLines().filter((line) => line.level === 30);
    assert.equal(info.length, 1, JSON.stringify(providerLines()));
    assert.match(info[0].msg, /^CUDA not available: .+; serving on CPU$/);
    assert.match(info[0].msg, CUDA_REASON);
    assert.equal(info[0].using, 'cpu');
    const warnings = providerLines().filter((line) => line.level === 40);
    assert.ok(
      warnings.every((line) => line.model === 'asks-cuda'),
      `only the model that names cuda warns: ${JSON.stringify(warnings)}`,
    );
  });

  it('a model whose config.yaml names cuda: a warning with the reason', () => {
    const warnings = providerLines().filter((line) => line.level === 40 && line.model === 'asks-cuda');
    assert.equal(warnings.length, 1, JSON.stringify(providerLines()));
    assert.match(
      warnings[0].msg,
      /^model asks-cuda:1: execution provider cuda \(named in config\.yaml\) not used, serving on CPU: /,
    );
    assert.match(warnings[0].reason, CUDA_REASON);
  });

  for (const name of ['default-a', 'default-b', 'asks-cuda']) {
    it(`${name}: the metadata names the provider in use and why CUDA was skipped`, async () => {
      const { status, body } = await getJson(`${server.url}/v2/models/${name}`);
      assert.equal(status, 200);
      assert.equal(body.execution_provider, 'cpu');
      assert.equal(body.runtime.skipped_providers.length, 1);
      assert.equal(body.runtime.skipped_providers[0].provider, 'cuda');
      assert.match(body.runtime.skipped_providers[0].error, CUDA_REASON);
    });
  }
});

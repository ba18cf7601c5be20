/**
 * The examples/ scripts, run as a user runs them (importing `onnx-serve`, `onnx-serve/client`,
 * `onnx-serve/fastify`, resolved to the sources through the package's onnx-serve-source export
 * condition), and the copies of them in docs/library.md, which must match the files.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_MODEL_REPOSITORY, type RunningServer } from '../../src/server/start.js';
import { startTestServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const runExample = (file: string, ...args: string[]) =>
  run(process.execPath, ['--conditions=onnx-serve-source', '--import', 'tsx', file, ...args], { cwd: ROOT });

describe('examples/ run green', () => {
  let server: RunningServer;

  before(async () => {
    server = await startTestServer({ modelRepository: DEFAULT_MODEL_REPOSITORY });
  });
  after(async () => {
    await server?.close();
  });

  test('examples/in-process.ts', async () => {
    const { stdout } = await runExample('examples/in-process.ts');
    assert.equal(
      stdout,
      'inputs: [{"name":"x","datatype":"FP32","shape":[-1,3,-1,-1]}]\n' +
        'output softmax_0.tmp_0: FP32 [1,2]\n' +
        'refused (INVALID_ARGUMENT): inputs[0].shape[1] must be 3 (model text-orientation, input x), got 4\n',
    );
  });

  test('examples/predict-image.ts', async () => {
    const { stdout } = await runExample('examples/predict-image.ts');
    assert.equal(stdout, 'read: Invoice 2026-0042\nread: Total due: 99.50 EUR\norientation: 0\n');
  });

  test('examples/embed-in-fastify.ts', async () => {
    const { stdout } = await runExample('examples/embed-in-fastify.ts');
    assert.equal(stdout, 'own route: {"shape":[1,2]}\nready: true\nmounted model: text-orientation onnx_onnxv1\n');
  });

  test('examples/remote-client.ts', async () => {
    const { stdout } = await runExample('examples/remote-client.ts', server.url);
    assert.equal(
      stdout,
      'live: true ready: true\n' +
        'server: onnx-serve binary tensors: true\n' +
        'output softmax_0.tmp_0: FP32 [2,2]\n' +
        "server said 404: Request for unknown model: 'no-such-model' is not found; models served: ocr, text-detector, text-orientation, text-recognizer\n",
    );
  });
});

test('docs/library.md shows the examples exactly as they are in examples/', () => {
  const doc = readFileSync(new URL('docs/library.md', `file://${ROOT}`), 'utf8');
  const blocks = [...doc.matchAll(/<!-- example: (\S+) -->\n+```ts\n([\s\S]*?)```\n/g)];
  assert.deepEqual(
    blocks.map(([, file]) => file),
    [
      'examples/in-process.ts',
      'examples/predict-image.ts',
      'examples/embed-in-fastify.ts',
      'examples/remote-client.ts',
    ],
  );
  for (const [, file, code] of blocks) {
    assert.equal(
      code,
      readFileSync(new URL(file, `file://${ROOT}`), 'utf8'),
      `docs/library.md's copy of ${file} is stale`,
    );
  }
});

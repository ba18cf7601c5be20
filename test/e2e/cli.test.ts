/**
 * The built command line, as a user runs it: `onnx-serve serve` (what `npm start` runs) and
 * `onnx-serve inspect`.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { OCR_ASSETS } from '../helpers/ocr.js';

const CLI = path.resolve('dist/cli/index.js');
const run = promisify(execFile);

it('serve: the default repository becomes ready, answers, and stops cleanly on SIGTERM', async () => {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--grpc-port', '0', '--log-level', 'info'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let url: string | undefined;
    const lines = createInterface({ input: child.stdout });
    for await (const line of lines) {
      const event = JSON.parse(line) as { url?: string; msg: string; ready?: number; total?: number };
      url ??= event.url;
      if (event.ready !== undefined) {
        // The three PP-OCR models and the ocr pipeline that chains them.
        assert.equal(event.ready, 4, line);
        assert.equal(event.total, 4, line);
        break;
      }
    }
    assert.ok(url, 'the log names the URL');
    const ready = await fetch(`${url}/v2/health/ready`);
    assert.equal(ready.status, 200);
    const models = await Promise.all(
      ['text-detector', 'text-recognizer', 'text-orientation', 'ocr'].map(
        async (m) => (await fetch(`${url}/v2/models/${m}`)).status,
      ),
    );
    assert.deepEqual(models, [200, 200, 200, 200]);

    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exit, 0);
  } finally {
    child.kill('SIGKILL');
  }
});

it('serve: a bad option is refused with a message naming it', async () => {
  await assert.rejects(
    run(process.execPath, [CLI, 'serve', '--port', 'eighty']),
    (error: { stderr: string; code: number }) => {
      assert.match(error.stderr, /--port.*expected a port number from 0 to 65535, got "eighty"/);
      assert.notEqual(error.code, 0);
      return true;
    },
  );
});

it('serve: a worker nice value outside 0-19 is refused with a message naming it', async () => {
  await assert.rejects(
    run(process.execPath, [CLI, 'serve', '--worker-nice', '20']),
    (error: { stderr: string; code: number }) => {
      assert.match(error.stderr, /--worker-nice.*expected a whole number from 0 to 19, got "20"/);
      assert.notEqual(error.code, 0);
      return true;
    },
  );
});

it('inspect: prints the inputs and outputs of the three default models', async () => {
  const files = ['ch_PP-OCRv4_det_infer.onnx', 'ch_PP-OCRv4_rec_infer.onnx', 'ch_ppocr_mobile_v2.0_cls_infer.onnx'].map(
    (f) => path.join(OCR_ASSETS, f),
  );
  const text = await run(process.execPath, [CLI, 'inspect', ...files]);
  assert.match(text.stdout, /Inputs:/);
  assert.match(text.stdout, /softmax_11\.tmp_0/);
  assert.match(text.stdout, /sigmoid_0\.tmp_0/);

  const json = JSON.parse((await run(process.execPath, [CLI, 'inspect', '--json', ...files])).stdout) as Array<{
    inputs: { name: string; shape: unknown[] }[];
    outputs: { name: string; shape: unknown[] }[];
  }>;
  assert.equal(json.length, 3);
  assert.deepEqual(json[1].inputs[0], {
    ...json[1].inputs[0],
    name: 'x',
    shape: ['p2o.DynamicDimension.0', 3, 48, 'p2o.DynamicDimension.1'],
  });
  assert.equal(json[1].outputs[0].shape[2], 6625);
  assert.deepEqual(
    json[2].outputs.map((o) => o.name),
    ['softmax_0.tmp_0'],
  );
});

it('inspect: a file that is not a model fails with a clear message', async () => {
  await assert.rejects(
    run(process.execPath, [CLI, 'inspect', path.resolve('package.json')]),
    (error: { stderr: string; code: number }) => {
      assert.match(error.stderr, /not an ONNX model: .*package\.json/);
      assert.equal(error.code, 1);
      return true;
    },
  );
});

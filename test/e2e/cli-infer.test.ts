/** `onnx-serve infer URL MODEL --input name=file`, run from source as a user runs the command. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import type { RunningServer } from '../../src/server/start.js';
import { writeIdentityModel } from '../helpers/onnx-builder.js';
import { startTestServer } from '../helpers/server.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../src/cli/index.ts', import.meta.url));
const NPY = fileURLToPath(new URL('../fixtures/npy/', import.meta.url));
const onnxServe = (...args: string[]) => run(process.execPath, ['--import', 'tsx', CLI, ...args]);

describe('onnx-serve infer', () => {
  let dir: string;
  let server: RunningServer;
  let stub: FastifyInstance;
  let stubUrl: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-cli-infer-'));
    await writeIdentityModel(path.join(dir, 'models'), 'identity', ['FP32', 'INT64', 'BOOL']);
    server = await startTestServer({ modelRepository: path.join(dir, 'models') });
    stub = Fastify();
    stub.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    stub.post('/v2/models/:model/predict', async (request) => ({
      model: (request.params as { model: string }).model,
      type: request.headers['content-type'],
      bytes: (request.body as Buffer).length,
    }));
    stubUrl = await stub.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await server?.close();
    await stub?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('.npy and .json inputs go to /infer and the answer prints as exact JSON', async () => {
    const int64 = path.join(dir, 'ids.json');
    await writeFile(int64, '{"shape": [1, 2], "datatype": "INT64", "data": [9223372036854775807, -1]}');
    const { stdout } = await onnxServe(
      'infer',
      server.url,
      'identity',
      '--input',
      `x_fp32=${NPY}fp32-2x3.npy`,
      '--input',
      `x_int64=${int64}`,
      '-i',
      `x_bool=${NPY}bool-2x2.npy`,
      '--output',
      'y_int64',
      '--output',
      'y_fp32',
      '--output',
      'y_bool',
    );
    assert.equal(
      stdout,
      '{"model_name":"identity","model_version":"1","outputs":[' +
        '{"name":"y_int64","datatype":"INT64","shape":[1,2],"data":[9223372036854775807,-1]},' +
        '{"name":"y_fp32","datatype":"FP32","shape":[2,3],"data":[1.5,-2,3.25,0,1e-8,-0]},' +
        '{"name":"y_bool","datatype":"BOOL","shape":[2,2],"data":[true,false,false,true]}]}\n',
    );
  });

  test('an image goes to /predict with its media type', async () => {
    const image = path.join(dir, 'photo.png');
    await writeFile(image, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2]));
    const { stdout } = await onnxServe('infer', stubUrl, 'classifier', '--input', `image=${image}`);
    assert.deepEqual(JSON.parse(stdout), { model: 'classifier', type: 'image/png', bytes: 6 });
  });

  test("a server error prints the server's message and exits 1", async () => {
    await assert.rejects(
      onnxServe('infer', server.url, 'nope', '--input', `x=${NPY}fp32-2x3.npy`),
      (error: { stderr: string; code: number }) => {
        assert.equal(
          error.stderr,
          "onnx-serve: Request for unknown model: 'nope' is not found; models served: identity\n",
        );
        assert.equal(error.code, 1);
        return true;
      },
    );
  });
});

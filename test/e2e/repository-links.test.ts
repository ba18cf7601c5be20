/**
 * Repositories as Kubernetes and KServe make them: of symbolic links (volume mounts, `ln -s`), whose
 * linked model folders, version folders and files are served as Triton serves them (a link that leads
 * nowhere is listed UNAVAILABLE with why), and KServe's /mnt/models holding a bare model.onnx, served
 * under the InferenceService's name. A repository where nothing is found says so in the log.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { capturingLogger } from '../helpers/log-capture.js';
import { passThroughModel } from '../helpers/onnx-builder.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

const QUIET = 'instances: 1\nsession: { intra_op_threads: 1 }\nwarmup: { runs: 1 }\n';
const MODEL = passThroughModel([{ input: 'x', output: 'y', datatype: 'FP32', shape: ['batch', 2] }]);

let root: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'onnx-serve-links-'));
  // The real files live outside the repository, as a volume mount puts them.
  const store = path.join(root, 'store');
  await mkdir(path.join(store, 'folder', '1'), { recursive: true });
  await writeFile(path.join(store, 'folder', '1', 'model.onnx'), MODEL);
  await writeFile(path.join(store, 'folder', 'config.yaml'), QUIET);
  await mkdir(path.join(store, 'version'), { recursive: true });
  await writeFile(path.join(store, 'version', 'model.onnx'), MODEL);
  await writeFile(path.join(store, 'file.onnx'), MODEL);

  const repository = path.join(root, 'repository');
  await mkdir(path.join(repository, 'linked-version'), { recursive: true });
  await mkdir(path.join(repository, 'linked-file', '1'), { recursive: true });
  await symlink(path.join(store, 'folder'), path.join(repository, 'linked-folder'));
  await symlink(path.join(store, 'version'), path.join(repository, 'linked-version', '1'));
  await writeFile(path.join(repository, 'linked-version', 'config.yaml'), QUIET);
  await symlink(path.join(store, 'file.onnx'), path.join(repository, 'linked-file', '1', 'model.onnx'));
  await writeFile(path.join(repository, 'linked-file', 'config.yaml'), QUIET);
  await symlink(path.join(store, 'nowhere'), path.join(repository, 'dangling'));
  await mkdir(path.join(root, 'empty'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

it('serves linked model folders, version folders and files; a dangling link is UNAVAILABLE with why', async () => {
  const server = await startTestServer({ modelRepository: path.join(root, 'repository'), strictReadiness: false });
  try {
    for (const name of ['linked-folder', 'linked-version', 'linked-file']) {
      const answer = await postJson(`${server.url}/v2/models/${name}/infer`, {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [3, 4] }],
      });
      assert.deepEqual([answer.status, answer.body.outputs?.[0].data], [200, [3, 4]], name);
    }
    const index = await postJson(`${server.url}/v2/repository/index`, '');
    const dangling = (index.body as Array<{ name: string; state: string; reason?: string }>).find(
      (entry) => entry.name === 'dangling',
    );
    assert.equal(dangling?.state, 'UNAVAILABLE');
    assert.match(
      dangling?.reason ?? '',
      new RegExp(`^symbolic link ${path.join(root, 'repository', 'dangling')} cannot be followed: ENOENT`),
    );
    const meta = await getJson(`${server.url}/v2/models/dangling`);
    assert.equal(meta.status, 503);
  } finally {
    await server.close();
  }
});

it('a repository where nothing is found logs a warning naming it', async () => {
  const { log, lines } = capturingLogger('warn');
  const empty = path.join(root, 'empty');
  const server = await startTestServer({ modelRepository: empty, logger: log });
  try {
    const warning = lines.find((line) => line.level === 40 && line.repository === empty);
    assert.equal(
      warning?.msg,
      `model repository ${empty} holds no model: expected <model>/<version>/model.onnx folders (symbolic links are followed)`,
    );
  } finally {
    await server.close();
  }
});

it("KServe's layout: a bare model.onnx with its config.yaml, served under --model-name", async () => {
  const mnt = path.join(root, 'mnt-models');
  await mkdir(mnt);
  await writeFile(path.join(mnt, 'model.onnx'), MODEL);
  await writeFile(path.join(mnt, 'config.yaml'), `${QUIET}max_batch_size: 2\n`);
  const server = await startTestServer({ modelRepository: mnt, modelName: 'my-isvc' });
  try {
    const ready = await getJson(`${server.url}/v2/models/my-isvc/ready`);
    assert.deepEqual([ready.status, ready.body.state], [200, 'READY']);
    // config.yaml beside the file applies: its max_batch_size is the model's.
    assert.equal((await getJson(`${server.url}/v2/models/my-isvc/config`)).body.max_batch_size, 2);
    const answer = await postJson(`${server.url}/v2/models/my-isvc/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [5, 6] }],
    });
    assert.deepEqual([answer.status, answer.body.outputs[0].data], [200, [5, 6]]);
  } finally {
    await server.close();
  }
  const unnamed = await startTestServer({ modelRepository: mnt });
  try {
    assert.equal((await getJson(`${unnamed.url}/v2/models/model/ready`)).status, 200);
  } finally {
    await unnamed.close();
  }
});

/**
 * Model control (Triton's repository extension) on a temporary repository. Poll mode: hot swap under
 * load without a failed request, a corrupt new version that leaves the old one serving, load and
 * unload refused with Triton's wording. Explicit mode: the load and unload calls and the bearer token
 * that guards every control call. Load parameters (`config`, `file:`): load-config.test.ts.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createInferenceClient, type InferenceClient } from '../../src/grpc/client.js';
import type { RunningServer } from '../../src/server/start.js';
import { jsonRequest, LoadGenerator } from '../helpers/load.js';
import { CLS_MODEL as CLS, clsRepository } from '../helpers/repository.js';
import { assertGrpcError } from '../helpers/grpc.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const SHAPE = [1, 3, 48, 192];
const TOKEN = 'test-control-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let dir: string;
let server: RunningServer;
let grpc: InferenceClient;
/** Explicit mode, on the same repository. */
let explicit: RunningServer;
let explicitGrpc: InferenceClient;

/** Triton's answer to load and unload outside explicit mode (its core's LoadUnloadModel, status UNAVAILABLE). */
const notExplicit = (mode: string, what: string) =>
  `explicit model load / unload is not allowed if polling is enabled: onnx-serve runs with --model-control-mode ${mode}; start it with --model-control-mode explicit to use ${what}`;

/** Writes a version folder beside the repository and renames it in, so a poll never sees half a file. */
async function addVersion(version: number, write: (file: string) => Promise<void>): Promise<void> {
  const staging = path.join(dir, `.staging-${version}`);
  await mkdir(staging, { recursive: true });
  await write(path.join(staging, 'model.onnx'));
  await rename(staging, path.join(dir, 'cls', String(version)));
}

async function index(): Promise<unknown> {
  return (await postJson(`${server.url}/v2/repository/index`, '', AUTH)).body;
}

const until = (what: string, condition: () => Promise<boolean>) => waitUntil(what, condition, { intervalMs: 20 });

before(async () => {
  dir = await clsRepository(SHAPE, 'version_policy: { latest: 1 }\ninstances: 1');
  server = await startTestServer({
    modelRepository: dir,
    modelControlMode: 'poll',
    repositoryPollSecs: 0.2,
    controlToken: TOKEN,
    grpcPort: 0,
  });
  grpc = createInferenceClient(server.grpc!.address);
});

after(async () => {
  grpc?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('model control in poll mode', () => {
  it('announces the model_repository extension and indexes the repository', async () => {
    assert.ok((await getJson(`${server.url}/v2`)).body.extensions.includes('model_repository'));
    assert.deepEqual(await index(), [{ name: 'cls', version: '1', state: 'READY' }]);
  });

  it('refuses control calls without the token or with a wrong one', async () => {
    const none = await postJson(`${server.url}/v2/repository/index`, '');
    assert.deepEqual(
      [none.status, none.body],
      [
        401,
        {
          error:
            'model control needs the header Authorization: Bearer <token> (gRPC: the metadata authorization), with the --control-token or ONNX_SERVE_CONTROL_TOKEN of the server',
        },
      ],
    );
    const wrong = await postJson(`${server.url}/v2/repository/index`, '', { authorization: 'Bearer nope' });
    assert.deepEqual(
      [wrong.status, wrong.body],
      [401, { error: 'the bearer token does not match the server control token' }],
    );
    assert.equal((await postJson(`${server.url}/v2/models/cls/infer`, jsonRequest('', 'x', SHAPE).body)).status, 200);
  });

  it('hot swap under load: a new version takes over with no failed request', async () => {
    const load = new LoadGenerator(jsonRequest(`${server.url}/v2/models/cls/infer`, 'x', SHAPE), {
      concurrency: 4,
      maxRequests: 20_000,
    });
    await load.answered(30);
    await addVersion(2, (file) => copyFile(CLS, file));
    await until('version 2 to answer', async () => load.outcomes.some((o) => o.body?.model_version === '2'));
    const switched = load.outcomes.findIndex((o) => o.body?.model_version === '2');
    await load.answered(load.outcomes.length + 30);
    const outcomes = await load.stop();

    console.log(`hot swap: sent ${outcomes.length}, failed ${outcomes.filter((o) => o.status !== 200).length}`);
    for (const o of outcomes) assert.equal(o.status, 200, JSON.stringify(o));
    const firstV2Answer = outcomes[switched].doneAt;
    const later = outcomes.filter((o) => o.sentAt > firstV2Answer);
    assert.ok(later.length >= 30);
    assert.ok(
      later.every((o) => o.body.model_version === '2'),
      'requests sent after the swap go to version 2',
    );
    // latest: 1 retires version 1 once version 2 serves.
    assert.deepEqual(await index(), [{ name: 'cls', version: '2', state: 'READY' }]);
  });

  it('a corrupt new version leaves the old one serving, its error in the index', async () => {
    await addVersion(3, (file) => writeFile(file, 'not an onnx model'));
    await until('the index to show version 3', async () => JSON.stringify(await index()).includes('"version":"3"'));
    const [v2, v3] = (await index()) as { version: string; state: string; reason?: string }[];
    assert.deepEqual(v2, { name: 'cls', version: '2', state: 'READY' });
    assert.equal(v3.state, 'UNAVAILABLE');
    assert.match(v3.reason!, /cls\/3\/model\.onnx/);
    const infer = await postJson(`${server.url}/v2/models/cls/infer`, jsonRequest('', 'x', SHAPE).body);
    assert.deepEqual([infer.status, infer.body.model_version], [200, '2']);
    await rm(path.join(dir, 'cls', '3'), { recursive: true });
    await until('version 3 to leave the index', async () => !JSON.stringify(await index()).includes('"version":"3"'));
  });

  it('a corrupt rewrite of the serving version keeps it serving; HTTP and gRPC indexes both say why', async () => {
    const file = path.join(dir, 'cls', '2', 'model.onnx');
    const replace = async (write: (staged: string) => Promise<void>) => {
      const staged = path.join(dir, '.staging-rewrite');
      await write(staged);
      await rename(staged, file);
    };
    await replace((staged) => writeFile(staged, 'not an onnx model'));
    await until('the failed reload in the index', async () => JSON.stringify(await index()).includes('reload failed'));
    const [entry] = (await index()) as { name: string; version: string; state: string; reason: string }[];
    assert.deepEqual([entry.version, entry.state], ['2', 'READY']);
    assert.match(entry.reason, /^reload failed, still serving the previous model: .*cls\/2\/model\.onnx/);
    assert.deepEqual((await grpc.repositoryIndex({}, AUTH)).models, [entry]);
    const infer = await postJson(`${server.url}/v2/models/cls/infer`, jsonRequest('', 'x', SHAPE).body);
    assert.deepEqual([infer.status, infer.body.model_version], [200, '2']);

    await replace((staged) => copyFile(CLS, staged));
    await until('the reload to succeed', async () => !JSON.stringify(await index()).includes('reload failed'));
    assert.deepEqual((await grpc.repositoryIndex({}, AUTH)).models, [
      { name: 'cls', version: '2', state: 'READY', reason: '' },
    ]);
  });

  it("load and unload answer 503 with Triton's wording in poll mode, on HTTP and gRPC; the index answers", async () => {
    for (const call of ['load', 'unload']) {
      const response = await postJson(`${server.url}/v2/repository/models/cls/${call}`, '', AUTH);
      assert.deepEqual(
        [response.status, response.body],
        [503, { error: notExplicit('poll', `/v2/repository/models/cls/${call}`) }],
      );
    }
    await assertGrpcError(
      grpc.repositoryModelLoad({ model_name: 'cls' }, AUTH),
      status.UNAVAILABLE,
      notExplicit('poll', 'RepositoryModelLoad'),
    );
    await assertGrpcError(
      grpc.repositoryModelUnload({ model_name: 'cls' }, AUTH),
      status.UNAVAILABLE,
      notExplicit('poll', 'RepositoryModelUnload'),
    );
    assert.deepEqual((await grpc.repositoryIndex({}, AUTH)).models, [
      { name: 'cls', version: '2', state: 'READY', reason: '' },
    ]);
  });
});

describe('model control in explicit mode', () => {
  before(async () => {
    explicit = await startTestServer({
      modelRepository: dir,
      modelControlMode: 'explicit',
      controlToken: TOKEN,
      grpcPort: 0,
    });
    explicitGrpc = createInferenceClient(explicit.grpc!.address);
  });

  after(async () => {
    explicitGrpc?.close();
    await explicit?.close();
  });

  it('refuses model names that could leave the repository', async () => {
    for (const name of ['__proto__', '..%2F..%2Fetc', '.hidden']) {
      const response = await postJson(`${explicit.url}/v2/repository/models/${name}/load`, '', AUTH);
      const decoded = decodeURIComponent(name);
      assert.deepEqual(
        [response.status, response.body],
        [
          400,
          { error: `model name "${decoded}" is not valid; expected ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$ without ".."` },
        ],
      );
    }
  });

  it('gRPC: every control call, the index included, needs the token as authorization metadata', async () => {
    const refused = [
      explicitGrpc.repositoryIndex({}),
      explicitGrpc.repositoryModelLoad({ model_name: 'cls' }),
      explicitGrpc.repositoryModelUnload({ model_name: 'cls' }, { authorization: 'Bearer nope' }),
    ];
    const messages = [
      'model control needs the header Authorization: Bearer <token> (gRPC: the metadata authorization), with the --control-token or ONNX_SERVE_CONTROL_TOKEN of the server',
      'model control needs the header Authorization: Bearer <token> (gRPC: the metadata authorization), with the --control-token or ONNX_SERVE_CONTROL_TOKEN of the server',
      'the bearer token does not match the server control token',
    ];
    for (const [index, call] of refused.entries()) {
      await assert.rejects(call, (error: ServiceError) => {
        assert.deepEqual([status[error.code], error.details], ['UNAUTHENTICATED', messages[index]]);
        return true;
      });
    }
    assert.equal((await postJson(`${explicit.url}/v2/models/cls/infer`, jsonRequest('', 'x', SHAPE).body)).status, 200);
  });

  it('gRPC: RepositoryModelUnload and RepositoryModelLoad do what the HTTP calls do', async () => {
    assert.deepEqual(await explicitGrpc.repositoryModelUnload({ model_name: 'cls' }, AUTH), {});
    const gone = await postJson(`${explicit.url}/v2/models/cls/infer`, jsonRequest('', 'x', SHAPE).body);
    assert.equal(gone.status, 404);
    // Triton's index keeps an unloaded model, UNAVAILABLE with the reason "unloaded".
    assert.deepEqual((await explicitGrpc.repositoryIndex({}, AUTH)).models, [
      { name: 'cls', version: '2', state: 'UNAVAILABLE', reason: 'unloaded' },
    ]);
    assert.deepEqual(await explicitGrpc.repositoryModelLoad({ model_name: 'cls' }, AUTH), {});
    const back = await postJson(`${explicit.url}/v2/models/cls/infer`, jsonRequest('', 'x', SHAPE).body);
    assert.deepEqual([back.status, back.body.model_version], [200, '2']);
    await assert.rejects(explicitGrpc.repositoryModelLoad({ model_name: 'absent' }, AUTH), (error: ServiceError) => {
      assert.deepEqual(
        [status[error.code], error.details],
        [
          'NOT_FOUND',
          `failed to load 'absent', failed to poll from model repository: model absent is not in repository ${dir}`,
        ],
      );
      return true;
    });
  });

  it('unload takes a model out of service; load brings it back', async () => {
    const unload = await postJson(`${explicit.url}/v2/repository/models/cls/unload`, '', AUTH);
    assert.deepEqual([unload.status, unload.body], [200, {}]);
    const gone = await postJson(`${explicit.url}/v2/models/cls/infer`, jsonRequest('', 'x', SHAPE).body);
    assert.deepEqual(
      [gone.status, gone.body],
      [404, { error: "Request for unknown model: 'cls' is not found; models served: (none)" }],
    );
    const load = await postJson(`${explicit.url}/v2/repository/models/cls/load`, '{}', AUTH);
    assert.deepEqual([load.status, load.body], [200, [{ name: 'cls', version: '2', state: 'READY' }]]);
    const back = await postJson(`${explicit.url}/v2/models/cls/infer`, jsonRequest('', 'x', SHAPE).body);
    assert.deepEqual([back.status, back.body.model_version], [200, '2']);
    const missing = await postJson(`${explicit.url}/v2/repository/models/absent/load`, '', AUTH);
    assert.deepEqual(
      [missing.status, missing.body],
      [
        404,
        {
          error: `failed to load 'absent', failed to poll from model repository: model absent is not in repository ${dir}`,
        },
      ],
    );
  });
});

describe('the index in explicit mode, with a folder added after startup', () => {
  it('lists the new folder by name only (as Triton), then READY once loaded, on HTTP and gRPC', async () => {
    const repository = await clsRepository(SHAPE);
    const late = await startTestServer({
      modelRepository: repository,
      modelControlMode: 'explicit',
      insecureControl: true,
      grpcPort: 0,
    });
    const lateGrpc = createInferenceClient(late.grpc!.address);
    try {
      await mkdir(path.join(repository, 'late', '1'), { recursive: true });
      await copyFile(CLS, path.join(repository, 'late', '1', 'model.onnx'));
      const before = await postJson(`${late.url}/v2/repository/index`, '');
      assert.deepEqual(before.body, [{ name: 'cls', version: '1', state: 'READY' }, { name: 'late' }]);
      const ready = await postJson(`${late.url}/v2/repository/index`, '{"ready":true}');
      assert.deepEqual(ready.body, [{ name: 'cls', version: '1', state: 'READY' }]);
      assert.deepEqual((await lateGrpc.repositoryIndex({})).models, [
        { name: 'cls', version: '1', state: 'READY', reason: '' },
        { name: 'late', version: '', state: '', reason: '' },
      ]);
      const load = await postJson(`${late.url}/v2/repository/models/late/load`, '');
      assert.deepEqual([load.status, load.body], [200, [{ name: 'late', version: '1', state: 'READY' }]]);
      assert.deepEqual((await postJson(`${late.url}/v2/repository/index`, '')).body, [
        { name: 'cls', version: '1', state: 'READY' },
        { name: 'late', version: '1', state: 'READY' },
      ]);
    } finally {
      lateGrpc.close();
      await late.close();
      await rm(repository, { recursive: true, force: true });
    }
  });
});

describe('model control off or unguarded', () => {
  it("mode none: the index answers (as Triton's does); load and unload answer 503 with Triton's wording, on HTTP and gRPC", async () => {
    const plain = await startTestServer({ modelRepository: dir, grpcPort: 0 });
    const plainGrpc = createInferenceClient(plain.grpc!.address);
    try {
      const index = await postJson(`${plain.url}/v2/repository/index`, '');
      assert.deepEqual([index.status, index.body], [200, [{ name: 'cls', version: '2', state: 'READY' }]]);
      assert.deepEqual((await plainGrpc.repositoryIndex({})).models, [
        { name: 'cls', version: '2', state: 'READY', reason: '' },
      ]);
      const response = await postJson(`${plain.url}/v2/repository/models/cls/load`, '', AUTH);
      assert.deepEqual(
        [response.status, response.body],
        [503, { error: notExplicit('none', '/v2/repository/models/cls/load') }],
      );
      await assertGrpcError(
        plainGrpc.repositoryModelUnload({ model_name: 'cls' }, AUTH),
        status.UNAVAILABLE,
        notExplicit('none', 'RepositoryModelUnload'),
      );
    } finally {
      plainGrpc.close();
      await plain.close();
    }
  });

  it('poll or explicit without a token: the server refuses to start', async () => {
    await assert.rejects(startTestServer({ modelRepository: dir, modelControlMode: 'explicit' }), {
      message:
        '--model-control-mode explicit needs a control token: --control-token or ONNX_SERVE_CONTROL_TOKEN (or --insecure-control to let anyone who reaches the port load and unload models)',
    });
  });
});

/**
 * A repository load's `config` parameter (Triton's repository extension) in explicit mode, over real
 * HTTP and gRPC: Triton's ModelConfig JSON or config.yaml's keys replace the configuration for that
 * load, malformed ones are refused naming the field, and no config can make the server read a file
 * outside the model's folder. The first tests send what tritonclient's model-control examples send
 * (triton-inference-server/client src/python/examples/simple_http_model_control.py and
 * simple_grpc_model_control.py; tritonclient/http/_client.py load_model puts the text in
 * `parameters.config`, tritonclient/grpc/_client.py in `parameters["config"].string_param`).
 */
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createInferenceClient, type InferenceClient } from '../../src/grpc/client.js';
import type { RunningServer } from '../../src/server/start.js';
import { buildModel, writeRepositoryModel } from '../helpers/onnx-builder.js';
import { assertGrpcError } from '../helpers/grpc.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

let dir: string;
let server: RunningServer;
let grpc: InferenceClient;

const CONFIG_YAML = 'max_batch_size: 8\ninstances: 1\nsession: { intra_op_threads: 1 }\nwarmup: { runs: 1 }\n';

/** Triton's example model "simple": OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, INT32 [-1, 16]. */
const simple = buildModel(
  [
    { name: 'INPUT0', datatype: 'INT32', dims: ['batch', 16] },
    { name: 'INPUT1', datatype: 'INT32', dims: ['batch', 16] },
  ],
  [
    { name: 'OUTPUT0', datatype: 'INT32', dims: ['batch', 16] },
    { name: 'OUTPUT1', datatype: 'INT32', dims: ['batch', 16] },
  ],
  [
    { op: 'Add', inputs: ['INPUT0', 'INPUT1'], outputs: ['OUTPUT0'] },
    { op: 'Sub', inputs: ['INPUT0', 'INPUT1'], outputs: ['OUTPUT1'] },
  ],
);

const load = (model: string, body: unknown = '') => postJson(`${server.url}/v2/repository/models/${model}/load`, body);
const configOf = async (model: string) => (await getJson(`${server.url}/v2/models/${model}/config`)).body;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-load-config-'));
  await writeRepositoryModel(dir, 'simple', simple, CONFIG_YAML);
  await writeFile(path.join(dir, 'simple', 'labels.txt'), Array.from({ length: 16 }, (_, i) => `l${i}`).join('\n'));
  // A file beside the repository that no load may reach.
  await writeFile(path.join(dir, 'secret.txt'), 'not a label\n');
  server = await startTestServer({
    modelRepository: dir,
    modelControlMode: 'explicit',
    insecureControl: true,
    grpcPort: 0,
  });
  grpc = createInferenceClient(server.grpc!.address);
});

after(async () => {
  grpc?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("tritonclient's model-control examples, as they send", () => {
  it('HTTP: a config that is not JSON is refused with "failed to load"; {"max_batch_size":"16"} replaces the configuration', async () => {
    // simple_http_model_control.py sends this text on purpose and expects "failed to load" in the message.
    const bad = await load('simple', {
      parameters: { config: '"parameters": {"config": {{"max_batch_size": "16"}}}' },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^failed to load 'simple', load parameter "config" is not valid JSON: /);
    assert.equal((await configOf('simple')).max_batch_size, 8);

    // Protobuf's JSON writes integers as strings; Triton takes them, and so does onnx-serve.
    const good = await load('simple', { parameters: { config: '{"max_batch_size":"16"}' } });
    assert.deepEqual([good.status, good.body], [200, [{ name: 'simple', version: '1', state: 'READY' }]]);
    assert.equal((await configOf('simple')).max_batch_size, 16);

    const unload = await postJson(`${server.url}/v2/repository/models/simple/unload`, '');
    assert.deepEqual([unload.status, unload.body], [200, {}]);
    assert.equal((await fetch(`${server.url}/v2/models/simple/ready`)).status, 404);
    // Triton's index keeps an unloaded model, UNAVAILABLE with the reason "unloaded".
    const index = await postJson(`${server.url}/v2/repository/index`, '');
    assert.deepEqual(index.body, [{ name: 'simple', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' }]);
    const ready = await postJson(`${server.url}/v2/repository/index`, { ready: true });
    assert.deepEqual(ready.body, []);

    const wrong = await load('wrong_model_name');
    assert.deepEqual(
      [wrong.status, wrong.body],
      [
        404,
        {
          error: `failed to load 'wrong_model_name', failed to poll from model repository: model wrong_model_name is not in repository ${dir}`,
        },
      ],
    );
  });

  it('a load without config reads config.yaml again', async () => {
    const again = await load('simple');
    assert.equal(again.status, 200);
    assert.equal((await configOf('simple')).max_batch_size, 8);
    const index = await postJson(`${server.url}/v2/repository/index`, '');
    assert.deepEqual(index.body, [{ name: 'simple', version: '1', state: 'READY' }]);
  });

  it('gRPC: the config as string_param, the same answers; ModelConfig shows it', async () => {
    await assert.rejects(
      grpc.repositoryModelLoad({ model_name: 'simple', parameters: { config: { string_param: '{"max_batch_size"' } } }),
      (error: { code: number; details: string }) => {
        assert.equal(status[error.code], 'INVALID_ARGUMENT');
        assert.match(error.details, /^failed to load 'simple', load parameter "config" is not valid JSON: /);
        return true;
      },
    );
    await grpc.repositoryModelLoad({
      model_name: 'simple',
      parameters: { config: { string_param: '{"max_batch_size":"16"}' } },
    });
    assert.equal((await grpc.modelConfig({ name: 'simple' })).config.max_batch_size, 16);
    await grpc.repositoryModelUnload({ model_name: 'simple' });
    // simple_grpc_model_control.py: is_model_ready after the unload is False, not an error.
    assert.deepEqual(await grpc.modelReady({ name: 'simple' }), { ready: false });
    assert.deepEqual((await grpc.repositoryIndex({})).models, [
      { name: 'simple', version: '1', state: 'UNAVAILABLE', reason: 'unloaded' },
    ]);
    await assertGrpcError(
      grpc.repositoryModelLoad({ model_name: 'wrong_model_name' }),
      status.NOT_FOUND,
      `failed to load 'wrong_model_name', failed to poll from model repository: model wrong_model_name is not in repository ${dir}`,
    );
    await grpc.repositoryModelLoad({ model_name: 'simple' });
    assert.equal((await grpc.modelConfig({ name: 'simple' })).config.max_batch_size, 8);
  });
});

describe("the config: Triton's ModelConfig or config.yaml's keys", () => {
  it('what GET /config answers, changed and sent back, is what the next /config answers', async () => {
    const config = await configOf('simple');
    config.max_batch_size = 4;
    config.dynamic_batching.max_queue_delay_microseconds = 2500;
    config.instance_group[0].count = 2;
    config.output[0].label_filename = 'labels.txt';
    const answer = await load('simple', { parameters: { config: JSON.stringify(config) } });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const now = await configOf('simple');
    assert.deepEqual(
      [now.max_batch_size, now.dynamic_batching.max_queue_delay_microseconds, now.instance_group[0].count],
      [4, 2500, 2],
    );
    assert.deepEqual(
      now.output.map((o: { label_filename: string }) => o.label_filename),
      ['labels.txt', ''],
    );
    // The labels the new config names are the ones classification answers with.
    const inference = await postJson(`${server.url}/v2/models/simple/infer`, {
      inputs: [
        { name: 'INPUT0', datatype: 'INT32', shape: [1, 16], data: Array.from({ length: 16 }, (_, i) => i) },
        { name: 'INPUT1', datatype: 'INT32', shape: [1, 16], data: new Array(16).fill(0) },
      ],
      outputs: [{ name: 'OUTPUT0', parameters: { classification: 1 } }],
    });
    assert.deepEqual(inference.body.outputs[0].data, ['15.000000000:15:l15']);
  });

  it("protobuf's camelCase names (gRPC ModelConfig as MessageToJson writes it) over gRPC", async () => {
    const config = JSON.stringify({
      name: 'simple',
      platform: 'onnxruntime_onnx',
      maxBatchSize: 2,
      instanceGroup: [{ count: 1, kind: 'KIND_CPU' }],
      dynamicBatching: { preferredBatchSize: [2], defaultQueuePolicy: { maxQueueSize: '7' } },
    });
    await grpc.repositoryModelLoad({ model_name: 'simple', parameters: { config: { string_param: config } } });
    const now = await configOf('simple');
    assert.deepEqual(
      [
        now.max_batch_size,
        now.dynamic_batching.preferred_batch_size,
        now.dynamic_batching.default_queue_policy.max_queue_size,
      ],
      [2, [2], 7],
    );
  });

  it("an input's image format is config.yaml's preprocess.layout, and /config reports it on both transports", async () => {
    // Triton's image clients (src/python/examples/image_client.py, grpc_image_client.py parse_model)
    // read the layout from get_model_config's input format and refuse FORMAT_NONE.
    const config = JSON.stringify({
      backend: 'onnxruntime',
      max_batch_size: 8,
      input: [{ name: 'INPUT0', data_type: 'TYPE_INT32', format: 'FORMAT_NHWC', dims: [16] }],
    });
    const answer = await load('simple', { parameters: { config } });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const formats = (input: Array<{ format: string }>) => input.map((i) => i.format);
    assert.deepEqual(formats((await configOf('simple')).input), ['FORMAT_NHWC', 'FORMAT_NONE']);
    const grpcConfig = (await grpc.modelConfig({ name: 'simple' })).config as { input: Array<{ format: string }> };
    assert.deepEqual(formats(grpcConfig.input), ['FORMAT_NHWC', 'FORMAT_NONE']);
    const two = JSON.stringify({
      backend: 'onnxruntime',
      input: [
        { name: 'INPUT0', format: 'FORMAT_NCHW' },
        { name: 'INPUT1', format: 'FORMAT_NCHW' },
      ],
    });
    const refused = await load('simple', { parameters: { config: two } });
    assert.deepEqual(
      [refused.status, refused.body],
      [
        400,
        {
          error:
            'failed to load \'simple\', load parameter "config": config.input[1].format: a second image input (INPUT1); onnx-serve preprocesses one image input per model',
        },
      ],
    );
  });

  it("config.yaml's keys, as a JSON object or as text", async () => {
    const object = await load('simple', { parameters: { config: { max_batch_size: 3, instances: 1 } } });
    assert.equal(object.status, 200, JSON.stringify(object.body));
    assert.equal((await configOf('simple')).max_batch_size, 3);
    await grpc.repositoryModelLoad({
      model_name: 'simple',
      parameters: { config: { string_param: '{"max_batch_size": 5, "version_policy": {"latest": 1}}' } },
    });
    assert.equal((await configOf('simple')).max_batch_size, 5);
  });

  it('malformed configs are refused naming the field; the model keeps serving as it was', async () => {
    const cases: Array<[unknown, string]> = [
      ['{"max_batch_size": -1}', 'failed to load \'simple\', load parameter "config": max_batch_size must be >= 0'],
      [
        '{"platform": "tensorflow_graphdef"}',
        'failed to load \'simple\', load parameter "config": config.platform must be onnxruntime_onnx (onnx-serve runs ONNX models), got "tensorflow_graphdef"',
      ],
      [
        '{"name": "other"}',
        'failed to load \'simple\', load parameter "config": config.name is "other", but the load is for model "simple"',
      ],
      [
        '{"max_batch_size": 8, "input": [{"name": "INPUT0", "data_type": "TYPE_FOO", "dims": [16]}]}',
        'failed to load \'simple\', load parameter "config": config.input[0].data_type must be one of TYPE_BOOL, TYPE_UINT8, TYPE_UINT16, TYPE_UINT32, TYPE_UINT64, TYPE_INT8, TYPE_INT16, TYPE_INT32, TYPE_INT64, TYPE_FP16, TYPE_FP32, TYPE_FP64, TYPE_STRING, TYPE_BF16, got "TYPE_FOO"',
      ],
      [
        '{"backend": "onnxruntime", "sequence_batching": {"max_sequence_idle_microseconds": 5}}',
        'failed to load \'simple\', load parameter "config": config.sequence_batching is not supported by onnx-serve (only its default is accepted), got {"max_sequence_idle_microseconds":5}',
      ],
      [
        '{"backend": "onnxruntime", "no_such_field": 1}',
        "failed to load 'simple', load parameter \"config\": unknown key \"config.no_such_field\" (neither Triton's ModelConfig nor onnx-serve's config.yaml has it; with config.yaml's keys, send config.yaml's form)",
      ],
      [
        '[1, 2]',
        "failed to load 'simple', load parameter \"config\" must be a JSON object (Triton's ModelConfig or config.yaml's keys), got [1,2]",
      ],
      [
        { max_batch_size: 8, instances: 0 },
        'failed to load \'simple\', load parameter "config": instances must be a positive integer or "auto"',
      ],
    ];
    const before = await configOf('simple');
    for (const [config, message] of cases) {
      const answer = await load('simple', { parameters: { config } });
      assert.deepEqual([answer.status, answer.body], [400, { error: message }], JSON.stringify(config));
    }
    await assertGrpcError(
      grpc.repositoryModelLoad({
        model_name: 'simple',
        parameters: { config: { string_param: '{"max_batch_size": -1}' } },
      }),
      status.INVALID_ARGUMENT,
      'failed to load \'simple\', load parameter "config": max_batch_size must be >= 0',
    );
    assert.deepEqual(await configOf('simple'), before);
  });

  it('no config can make the server read a file outside the model folder, on either transport', async () => {
    const cases: Array<[string, string]> = [
      [
        JSON.stringify({ backend: 'onnxruntime', output: [{ name: 'OUTPUT0', label_filename: '../secret.txt' }] }),
        'label_filename.OUTPUT0 is "../secret.txt"',
      ],
      [
        JSON.stringify({ label_filename: { OUTPUT0: path.join(dir, 'secret.txt') } }),
        `label_filename.OUTPUT0 is ${JSON.stringify(path.join(dir, 'secret.txt'))}`,
      ],
      [
        JSON.stringify({ label_filename: { OUTPUT0: 'sub/../../secret.txt' } }),
        'label_filename.OUTPUT0 is "sub/../../secret.txt"',
      ],
      [JSON.stringify({ source: '../other/1/model.onnx' }), 'source is "../other/1/model.onnx"'],
      [
        JSON.stringify({ source: { package: 'onnxruntime-node', file: 'package.json' } }),
        'source names a file in package onnxruntime-node',
      ],
      [JSON.stringify({ default_model_filename: '..' }), 'default_model_filename is ".."'],
      [
        JSON.stringify({ session: { optimized_model_path: '/tmp/out.onnx' } }),
        'session.optimized_model_path is "/tmp/out.onnx"',
      ],
      [
        JSON.stringify({ postprocess: { type: 'ctc', dictionary_file: '../../etc/passwd' } }),
        'postprocess.dictionary_file is "../../etc/passwd"',
      ],
      [
        JSON.stringify({ precision: 'int8', quantization: { calibration: '../../etc' } }),
        'quantization.calibration is "../../etc"',
      ],
    ];
    const before = await configOf('simple');
    for (const [config, what] of cases) {
      const message = `failed to load 'simple', load parameter "config" names files outside the model's folder: ${what}; a load's configuration may name only files inside the model's folder`;
      const http = await load('simple', { parameters: { config } });
      assert.deepEqual([http.status, http.body], [400, { error: message }], config);
      await assertGrpcError(
        grpc.repositoryModelLoad({ model_name: 'simple', parameters: { config: { string_param: config } } }),
        status.INVALID_ARGUMENT,
        message,
      );
    }
    // Triton's default_model_filename with a path separator never reaches the file system either.
    const slash = await load('simple', {
      parameters: { config: '{"backend": "onnxruntime", "default_model_filename": "../../x.onnx"}' },
    });
    assert.equal(slash.status, 400);
    assert.match(
      slash.body.error,
      /^failed to load 'simple', load parameter "config": default_model_filename must match pattern/,
    );
    assert.deepEqual(await configOf('simple'), before);
  });

  it('file: parameters stay refused with 400, never ignored', async () => {
    const message =
      'failed to load \'simple\', load parameter "file:1/model.onnx" is not supported: onnx-serve loads a model only from its folder in the repository; write the file there and load again';
    const http = await load('simple', { parameters: { config: '{}', 'file:1/model.onnx': 'AAAA' } });
    assert.deepEqual([http.status, http.body], [400, { error: message }]);
    await assertGrpcError(
      grpc.repositoryModelLoad({
        model_name: 'simple',
        parameters: { config: { string_param: '{}' }, 'file:1/model.onnx': { bytes_param: Buffer.from('x') } },
      }),
      status.INVALID_ARGUMENT,
      message,
    );
  });
});

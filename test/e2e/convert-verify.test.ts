/**
 * PyTorch → ONNX → verified: the export helper on real torch models (one Python start for all of
 * them), `onnx-serve verify` on the built CLI, and the serve-time gate on a real server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  describeExportFailure,
  runExportHelper,
  type ExportJob,
  type ExportResult,
  type InputSpec,
} from '../../src/convert/convert.js';
import { findPython } from '../../src/convert/python.js';
import { readTensorProto } from '../../src/onnx/model-file.js';
import type { RunningServer } from '../../src/server/start.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

const CLI = path.resolve('dist/cli/index.js');
const MODELS = path.resolve('test/fixtures/torch_models.py');
const execute = promisify(execFile);

let dir: string;
let repository: string;
const results = new Map<string, ExportResult>();
const conv: InputSpec = { name: 'x', shape: [1, 3, 16, 16], dtype: 'float32' };

/** `onnx-serve ARGS...`; never throws, so that failures can be asserted. */
async function onnxServe(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execute(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

function failure(key: string): Extract<ExportResult, { ok: false }> {
  const result = results.get(key)!;
  assert.equal(result.ok, false, `${key} should not convert`);
  return result as Extract<ExportResult, { ok: false }>;
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-convert-'));
  repository = path.join(dir, 'repository');
  const python = await findPython();
  // A TorchScript archive, a state dict and a sample file, all of the same weights (seed 3).
  const artifacts = path.join(dir, 'artifacts');
  await mkdir(artifacts);
  await execute(python.path, [
    '-c',
    `import sys, torch, numpy; sys.path.insert(0, ${JSON.stringify(path.dirname(MODELS))}); import torch_models
torch.manual_seed(3); m = torch_models.small_conv_net().eval()
torch.save(m.state_dict(), "${artifacts}/weights.pt"); torch.jit.save(torch.jit.script(m), "${artifacts}/scripted.pt")
numpy.savez("${artifacts}/sample.npz", x=numpy.ones((3, 3, 16, 16), dtype=numpy.float32))`,
  ]);
  const jobs: Record<string, ExportJob> = {
    conv: {
      source: `${MODELS}:small_conv_net`,
      inputs: [conv],
      output_names: ['logits'],
      output: path.join(repository, 'conv', '1', 'model.onnx'),
    },
    // Reference outputs from training mode: what forgetting model.eval() does.
    train: {
      source: `${MODELS}:small_conv_net`,
      inputs: [conv],
      output_names: ['logits'],
      output: path.join(repository, 'conv-train', '1', 'model.onnx'),
      skip_eval: true,
    },
    // Same inputs and outputs as conv, other weights.
    other: {
      source: `${MODELS}:small_conv_net`,
      inputs: [conv],
      output_names: ['logits'],
      output: path.join(dir, 'other', 'model.onnx'),
      seed: 1,
    },
    mobilenet: {
      source: 'torchvision.models:mobilenet_v3_small',
      kwargs: { weights: null },
      inputs: [{ name: 'image', shape: [1, 3, 224, 224], dtype: 'float32' }],
      output_names: ['logits'],
      output: path.join(dir, 'mobilenet', 'model.onnx'),
      samples: 2,
    },
    twoInTwoOut: {
      source: `${MODELS}:two_in_two_out`,
      inputs: [
        { name: 'features', shape: [1, 4], dtype: 'float32' },
        { name: 'ids', shape: [1, 3], dtype: 'int64' },
      ],
      output_names: ['scores', 'best'],
      output: path.join(dir, 'two', 'model.onnx'),
    },
    scripted: {
      source: path.join(artifacts, 'scripted.pt'),
      inputs: [conv],
      output: path.join(dir, 'scripted', 'model.onnx'),
      samples: 1,
    },
    stateDict: {
      source: `${MODELS}:small_conv_net`,
      state_dict: path.join(artifacts, 'weights.pt'),
      inputs: [conv],
      output: path.join(dir, 'state-dict', 'model.onnx'),
      samples: 1,
      sample_file: path.join(artifacts, 'sample.npz'),
    },
    unsupported: {
      source: `${MODELS}:spectrum`,
      inputs: [{ name: 'x', shape: [1, 8], dtype: 'float32' }],
      output: path.join(dir, 'spectrum', 'model.onnx'),
    },
    raises: {
      source: `${MODELS}:broken`,
      inputs: [{ name: 'x', shape: [1, 8], dtype: 'float32' }],
      output: path.join(dir, 'broken', 'model.onnx'),
    },
    badShape: {
      source: `${MODELS}:small_conv_net`,
      inputs: [{ name: 'x', shape: [1, 5, 16, 16], dtype: 'float32' }],
      output: path.join(dir, 'bad-shape', 'model.onnx'),
    },
  };
  const converted = await runExportHelper(python.path, Object.values(jobs));
  Object.keys(jobs).forEach((key, i) => results.set(key, converted[i]));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('convert', () => {
  it('exports with opset 17, named inputs and outputs, and 5 test data sets of batch 1 and 2', async () => {
    const result = results.get('conv')!;
    assert.deepEqual(result, { ...result, ok: true, opset: 17, inputs: ['x'], outputs: ['logits'], test_data_sets: 5 });
    const inspected = JSON.parse(
      (await onnxServe('inspect', '--json', path.join(repository, 'conv/1/model.onnx'))).stdout,
    );
    assert.deepEqual(inspected.inputs, [
      { name: 'x', elemType: 'FLOAT', datatype: 'FP32', shape: ['batch', 3, 16, 16] },
    ]);
    assert.deepEqual(inspected.outputs, [
      { name: 'logits', elemType: 'FLOAT', datatype: 'FP32', shape: ['batch', 10] },
    ]);
    const batches = await Promise.all(
      [0, 1].map(async (set) => {
        const file = path.join(repository, 'conv/1', `test_data_set_${set}`, 'input_0.pb');
        return readTensorProto(await readFile(file)).shape;
      }),
    );
    assert.deepEqual(batches, [
      [1, 3, 16, 16],
      [2, 3, 16, 16],
    ]);
  });

  it('takes TorchScript archives, state dicts with a factory, and real inputs from a .npz', async () => {
    assert.equal(results.get('scripted')!.ok, true);
    assert.deepEqual(results.get('stateDict'), { ...results.get('stateDict'), ok: true, test_data_sets: 2 });
    // Same weights, same seeded input: the reference outputs agree byte for byte.
    const [scripted, fromStateDict] = await Promise.all(
      ['scripted', 'state-dict'].map((folder) => readFile(path.join(dir, folder, 'test_data_set_0/output_0.pb'))),
    );
    assert.deepEqual(scripted, fromStateDict);
    const sample = readTensorProto(await readFile(path.join(dir, 'state-dict/test_data_set_1/input_0.pb')));
    assert.deepEqual(sample.shape, [3, 3, 16, 16]);
    assert.ok((sample.data as Float32Array).every((value) => value === 1));
    for (const folder of ['scripted', 'state-dict']) {
      const { code, stdout } = await onnxServe('verify', path.join(dir, folder, 'model.onnx'));
      assert.equal(code, 0, stdout);
    }
  });

  it('an operator the exporter cannot handle gives a short message and the cause', () => {
    assert.equal(
      describeExportFailure(failure('unsupported')),
      `cannot convert to ${path.join(dir, 'spectrum', 'model.onnx')}: the model uses aten::fft_rfft, which torch.onnx ` +
        'cannot export at opset 17: rewrite that part with supported operations, try another --opset, or register a symbolic function\n' +
        "  caused by UnsupportedOperatorError: Exporting the operator 'aten::fft_rfft' to ONNX opset version 17 is not supported. " +
        'Please feel free to request support or submit a pull request on PyTorch GitHub: https://github.com/pytorch/pytorch/issues',
    );
  });

  it('a factory that raises and a wrong input shape say so, with the underlying error', () => {
    assert.equal(failure('raises').message, `the factory ${MODELS}:broken raised an error`);
    assert.equal(failure('raises').error, 'ValueError: this factory always fails');
    assert.equal(failure('badShape').stage, 'sample');
    assert.equal(
      failure('badShape').message,
      'the model failed on inputs of the given shapes (check --input NAME:SHAPE:DTYPE)',
    );
    assert.match(failure('badShape').error, /^RuntimeError: .*expected input\[1, 5, 16, 16\] to have 3 channels/);
  });

  it('finds a Python with torch, and refuses one without it, saying how to install torch', async () => {
    const found = await findPython(undefined, {});
    assert.match(found.torchVersion, /^\d+\.\d+/);
    await assert.rejects(findPython('/nonexistent/python3'), {
      message:
        '--python /nonexistent/python3 cannot be used: not found; install PyTorch and ONNX for Python (Debian/Ubuntu: ' +
        'sudo apt-get install python3-torch python3-torchvision python3-onnx; elsewhere: pip install torch torchvision onnx), ' +
        'or name an interpreter that has them with --python PATH or ONNX_SERVE_PYTHON',
    });
    await assert.rejects(
      findPython(undefined, { ONNX_SERVE_PYTHON: '/nonexistent/python3' }),
      /^Error: ONNX_SERVE_PYTHON \/nonexistent/,
    );
  });
});

describe('verify', () => {
  // Elements per output over the sets: batches 1, 2, 1, 2, 1 hold 7 items (mobilenet: 2 sets, 3 items).
  for (const [key, model, outputs] of [
    ['conv', 'repository/conv/1/model.onnx', [['logits', 'FP32', 7 * 10]]],
    ['mobilenet', 'mobilenet/model.onnx', [['logits', 'FP32', 3 * 1000]]],
    [
      'two inputs and outputs',
      'two/model.onnx',
      [
        ['scores', 'FP32', 7 * 5],
        ['best', 'INT64', 7],
      ],
    ],
  ] as const) {
    it(`passes on ${key}, per output`, async () => {
      const { code, stdout } = await onnxServe('verify', '--json', path.join(dir, model));
      assert.equal(code, 0, stdout);
      const report = JSON.parse(stdout);
      assert.equal(report.pass, true);
      assert.deepEqual(
        report.outputs.map((o: any) => [o.name, o.datatype, o.elements]),
        outputs,
      );
      for (const output of report.outputs) {
        assert.equal(output.mismatched, 0);
        assert.ok(output.maxAbsError <= 1e-4, `${output.name}: ${output.maxAbsError}`);
      }
    });
  }

  it('fails a model exported from training mode (no eval()), naming the output', async () => {
    const { code, stdout } = await onnxServe('verify', path.join(repository, 'conv-train/1/model.onnx'));
    assert.equal(code, 1);
    assert.match(stdout, /^logits {2}FP32 .* 70\/70 {7}FAIL$/m);
    assert.match(
      stdout,
      /^FAIL: output logits: 70 of 70 elements differ beyond atol 0\.0001 \+ rtol 0\.001·\|expected\|/m,
    );
  });

  it('fails on the test data of another model, naming the output; tolerances change the verdict', async () => {
    const model = path.join(repository, 'conv/1/model.onnx');
    const { code, stdout } = await onnxServe('verify', model, path.join(dir, 'other'));
    assert.equal(code, 1);
    assert.match(stdout, /^FAIL: output logits: \d+ of 70 elements differ/m);
    const loose = await onnxServe('verify', model, path.join(dir, 'other'), '--atol', '100');
    assert.equal(loose.code, 0, loose.stdout);
    assert.match(loose.stdout, /^PASS$/m);
  });

  it('says where it looked when there is no test data', async () => {
    const { code, stderr } = await onnxServe('verify', path.join(repository, 'conv/1/model.onnx'), dir);
    assert.equal(code, 1);
    assert.equal(stderr, `onnx-serve: no test_data_set_* folder in ${dir}; expected ONNX test data sets there\n`);
  });
});

describe('optimize', () => {
  it('writes the extended graph (Conv+Relu fused), reports the change, and the result still verifies', async () => {
    const optimized = path.join(dir, 'optimized', 'model.onnx');
    const model = path.join(repository, 'conv/1/model.onnx');
    const { code, stdout } = await onnxServe('optimize', model, '--output', optimized, '--runs', '3', '--json');
    assert.equal(code, 0, stdout);
    const report = JSON.parse(stdout);
    assert.equal(report.level, 'extended');
    assert.deepEqual([report.before.nodeCount, report.after.nodeCount, report.after.path], [5, 4, optimized]);
    const count = (graph: any, op: string) => graph.operatorHistogram.find((o: any) => o.op === op)?.count ?? 0;
    assert.deepEqual(
      ['Conv', 'Relu', 'com.microsoft::FusedConv'].map((op) => [count(report.before, op), count(report.after, op)]),
      [
        [1, 0],
        [1, 0],
        [0, 1],
      ],
    );
    assert.equal(report.latency.after.runs, 3);
    assert.ok(report.latency.before.medianMs > 0 && report.latency.after.medianMs > 0);
    const check = await onnxServe('verify', optimized, path.dirname(model));
    assert.equal(check.code, 0, check.stdout);
  });
});

describe('optimize --fp16', () => {
  const io = async (file: string) => {
    const { inputs, outputs } = JSON.parse((await onnxServe('inspect', '--json', file)).stdout);
    return [...inputs, ...outputs].map((value: { datatype: string }) => value.datatype);
  };

  it('halves mobilenet_v3_small, keeps float32 inputs and outputs, and reports the error against float32', async () => {
    const model = path.join(dir, 'mobilenet', 'model.onnx');
    const half = path.join(dir, 'mobilenet-fp16', 'model.onnx');
    const { code, stdout } = await onnxServe('optimize', model, '--fp16', '--output', half, '--json');
    assert.equal(code, 0, stdout);
    const report = JSON.parse(stdout);
    assert.ok(report.sizeRatio > 0.45 && report.sizeRatio < 0.55, `size ratio ${report.sizeRatio}`);
    assert.equal(report.after.fileSize, (await readFile(half)).length);
    assert.deepEqual([report.float32Initializers, report.inputs, report.sets], [0, 'test data', 2]);
    assert.ok(report.convertedInitializers > 50);
    assert.deepEqual(report.tolerance, { atol: 1e-2, rtol: 1e-2 });
    assert.equal(report.outputs.length, 1);
    assert.deepEqual(report.outputs[0], { ...report.outputs[0], name: 'logits', datatype: 'FP32', pass: true });
    assert.ok(report.outputs[0].maxAbsError < 1e-2);
    assert.equal(report.pass, true);
    assert.deepEqual(await io(half), ['FP32', 'FP32']);
  });

  it('--fp16-io makes the float inputs and outputs float16; the text report names the tolerance', async () => {
    const half = path.join(dir, 'conv-fp16', 'model.onnx');
    const model = path.join(repository, 'conv/1/model.onnx');
    const { code, stdout } = await onnxServe('optimize', model, '--fp16', '--fp16-io', '--output', half);
    assert.equal(code, 0, stdout);
    assert.match(stdout, /inputs and outputs float16/);
    assert.match(stdout, /tolerance atol 0\.01 \+ rtol 0\.01/);
    assert.match(stdout, /^logits\s+FP16\s+\S+\s+\S+\s+yes$/m);
    assert.deepEqual(await io(half), ['FP16', 'FP16']);
  });

  it('refuses the float16 options without --fp16, and a model that is not ONNX', async () => {
    const model = path.join(repository, 'conv/1/model.onnx');
    const alone = await onnxServe('optimize', model, '--fp16-io', '--output', path.join(dir, 'x.onnx'));
    assert.deepEqual([alone.code, alone.stderr], [1, 'onnx-serve: --fp16-io needs --fp16\n']);
    const garbage = path.join(dir, 'garbage.onnx');
    await writeFile(garbage, 'not a model');
    const bad = await onnxServe('optimize', garbage, '--fp16', '--output', path.join(dir, 'y.onnx'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot convert .*garbage\.onnx to float16: cannot load the ONNX model/);
  });
});

describe('serve-time verification gate', () => {
  let server: RunningServer;
  before(async () => {
    await cp(path.join(repository, 'conv-train'), path.join(repository, 'conv-unchecked'), { recursive: true });
    await writeFile(path.join(repository, 'conv-unchecked', 'config.yaml'), 'verify: false\n');
    server = await startTestServer({ modelRepository: repository, strictReadiness: false });
  });
  after(async () => server?.close());

  it('refuses the model whose test data disagree, with the reason', async () => {
    const ready = await getJson(`${server.url}/v2/models/conv-train/ready`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.state, 'UNAVAILABLE');
    assert.match(
      ready.body.reason,
      /^its outputs disagree with the test data in .*conv-train\/1 \(set verify: false in config\.yaml to serve it anyway\): output logits: 70 of 70 elements differ/,
    );
    const infer = await postJson(`${server.url}/v2/models/conv-train/infer`, { inputs: [] });
    assert.equal(infer.status, 503);
    assert.match(
      infer.body.error,
      /Request for unknown model: 'conv-train' version 1 is not at ready state; it is unavailable: its outputs disagree/,
    );
  });

  it('serves the model whose test data agree, and one whose config says verify: false', async () => {
    for (const model of ['conv', 'conv-unchecked']) {
      const ready = await getJson(`${server.url}/v2/models/${model}/ready`);
      assert.equal(ready.status, 200, `${model}: ${JSON.stringify(ready.body)}`);
    }
    const input = readTensorProto(await readFile(path.join(repository, 'conv/1/test_data_set_0/input_0.pb')));
    const expected = readTensorProto(await readFile(path.join(repository, 'conv/1/test_data_set_0/output_0.pb')));
    const answer = await postJson(`${server.url}/v2/models/conv/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: input.shape, data: Array.from(input.data as Float32Array) }],
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.outputs[0].name, 'logits');
    const got: number[] = answer.body.outputs[0].data;
    (expected.data as Float32Array).forEach((want, i) => assert.ok(Math.abs(got[i] - want) < 1e-4, `logits[${i}]`));
  });
});

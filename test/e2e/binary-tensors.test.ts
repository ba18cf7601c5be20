/**
 * The binary tensor data extension end to end, for every datatype: a model that passes each
 * datatype through Identity answers the same tensors whether the request and response travel as
 * JSON or as binary blobs; malformed binary bodies are refused with 400 naming what is wrong.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeRequest, postInference } from '../../src/bench/wire.js';
import { HEADER_LENGTH_HEADER } from '../../src/protocol/binary-extension.js';
import type { Datatype, NamedTensor } from '../../src/protocol/datatypes.js';
import type { RunningServer } from '../../src/server/start.js';
import { identityModelForEveryDatatype, passThroughModel, writeRepositoryModel } from '../helpers/onnx-builder.js';
import { startTestServer } from '../helpers/server.js';

/** Two rows of three per datatype, with the values that break careless codecs. */
const VALUES: Record<Datatype, NamedTensor['data']> = {
  BOOL: new Uint8Array([1, 0, 1, 1, 0, 0]),
  UINT8: new Uint8Array([0, 255, 7, 128, 1, 254]),
  UINT16: new Uint16Array([0, 65535, 7, 32768, 1, 300]),
  UINT32: new Uint32Array([0, 4294967295, 7, 2147483648, 1, 70000]),
  UINT64: new BigUint64Array([0n, 18446744073709551615n, 9007199254740993n, 1n, 2n ** 63n, 42n]),
  INT8: new Int8Array([-128, 127, 0, -1, 1, 5]),
  INT16: new Int16Array([-32768, 32767, 0, -1, 1, 5]),
  INT32: new Int32Array([-2147483648, 2147483647, 0, -1, 1, 5]),
  INT64: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, -9007199254740993n, 0n, -1n, 5n]),
  // FP16 travels as its bit patterns: 1.5, -2, 0.25, 65504, 0, 1.
  FP16: new Uint16Array([0x3e00, 0xc000, 0x3400, 0x7bff, 0x0000, 0x3c00]),
  FP32: new Float32Array([1.5, -0.1, 3.4e38, 1e-30, 0, -7]),
  FP64: new Float64Array([0.1, -1e300, Math.PI, 5e-324, 0, -7]),
  // No NUL inside a string: onnxruntime-node hands strings to the runtime as C strings, so it cuts them there.
  BYTES: ['', 'a', 'héllo', '日本語', 'x'.repeat(300), 'end'],
};
const DATATYPES = Object.keys(VALUES) as Datatype[];

let repository: string;
let server: RunningServer;
let url: string;

before(async () => {
  repository = await mkdtemp(path.join(tmpdir(), 'onnx-serve-binary-'));
  await writeRepositoryModel(
    repository,
    'every-datatype',
    identityModelForEveryDatatype(DATATYPES),
    'warmup: { runs: 1 }\n',
  );
  await writeRepositoryModel(
    repository,
    'pass-through',
    passThroughModel([
      { input: 'in_FP32', output: 'out_FP32', datatype: 'FP32', shape: ['batch', 3] },
      { input: 'in_INT64', output: 'out_INT64', datatype: 'INT64', shape: ['batch', 3] },
    ]),
  );
  server = await startTestServer({ modelRepository: repository });
  url = `${server.url}/v2/models/every-datatype/infer`;
});

after(async () => {
  await server?.close();
  await rm(repository, { recursive: true, force: true });
});

const inputs = (): NamedTensor[] =>
  DATATYPES.map((datatype) => ({ name: `in_${datatype}`, datatype, shape: [2, 3], data: VALUES[datatype] }));

describe('binary and JSON tensors', () => {
  it('give identical outputs for every datatype', async () => {
    const json = await postInference(url, encodeRequest({ inputs: inputs() }, 'json'));
    const binary = await postInference(url, encodeRequest({ inputs: inputs() }, 'binary'));
    assert.equal(json.status, 200, json.error);
    assert.equal(binary.status, 200, binary.error);
    assert.equal(json.headers.get(HEADER_LENGTH_HEADER), null, 'a JSON request gets a JSON answer');
    assert.notEqual(binary.headers.get(HEADER_LENGTH_HEADER), null, 'a binary request gets blobs back');
    for (const [index, datatype] of DATATYPES.entries()) {
      const fromJson = json.response!.outputs[index];
      const fromBinary = binary.response!.outputs[index];
      assert.deepEqual(fromBinary, fromJson, `${datatype}: binary and JSON differ`);
      assert.deepEqual(fromBinary, { name: `out_${datatype}`, datatype, shape: [2, 3], data: VALUES[datatype] });
      assert.equal(binary.response!.header.outputs[index].parameters?.binary_data_size !== undefined, true);
    }
  });

  it('keeps an output in JSON when the request says binary_data: false for it', async () => {
    const mixed = await postInference(
      url,
      encodeRequest(
        { inputs: inputs(), outputs: [{ name: 'out_BYTES', parameters: { binary_data: false } }] },
        'binary',
      ),
    );
    assert.equal(mixed.status, 200, mixed.error);
    assert.deepEqual(mixed.response!.outputs, [
      { name: 'out_BYTES', datatype: 'BYTES', shape: [2, 3], data: VALUES.BYTES },
    ]);
    assert.equal(
      mixed.response!.header.outputs[0].parameters,
      undefined,
      'binary_data: false keeps that output in JSON',
    );
  });
});

describe('large binary answers (written as their parts, not joined first)', () => {
  // 3 × 40,000 FP32 and INT64 values: answers of ~1.4 MB, well past the size that is streamed.
  const rows = 40_000;
  const fp32 = Float32Array.from({ length: rows * 3 }, (_, i) => (i % 7 === 0 ? -i : i / 3));
  const int64 = BigInt64Array.from({ length: rows * 3 }, (_, i) => BigInt(i) * 2n ** 40n - 2n ** 62n);
  const large = (): NamedTensor[] => [
    { name: 'in_FP32', datatype: 'FP32', shape: [rows, 3], data: fp32 },
    { name: 'in_INT64', datatype: 'INT64', shape: [rows, 3], data: int64 },
  ];
  const request = () =>
    encodeRequest({ inputs: large(), outputs: [{ name: 'out_FP32' }, { name: 'out_INT64' }] }, 'binary');
  const passThroughUrl = () => `${server.url}/v2/models/pass-through/infer`;

  it('have a Content-Length and an Inference-Header-Content-Length that match the bytes sent', async () => {
    const encoded = request();
    const reply = await fetch(passThroughUrl(), {
      method: 'POST',
      headers: { 'accept-encoding': 'identity', ...encoded.headers },
      body: encoded.body,
    });
    const body = Buffer.from(await reply.arrayBuffer());
    assert.equal(reply.status, 200, body.toString('utf8', 0, 300));
    assert.equal(reply.headers.get('transfer-encoding'), null, 'not chunked');
    assert.equal(Number(reply.headers.get('content-length')), body.length);
    const headerLength = Number(reply.headers.get(HEADER_LENGTH_HEADER));
    const header = JSON.parse(body.toString('utf8', 0, headerLength)) as {
      outputs: { name: string; parameters: { binary_data_size: number } }[];
    };
    assert.deepEqual(
      header.outputs.map((output) => [output.name, output.parameters.binary_data_size]),
      [
        ['out_FP32', fp32.byteLength],
        ['out_INT64', int64.byteLength],
      ],
    );
    assert.equal(body.length, headerLength + fp32.byteLength + int64.byteLength);
    const blobs = body.subarray(headerLength);
    assert.equal(blobs.subarray(0, fp32.byteLength).compare(Buffer.from(fp32.buffer)), 0, 'FP32 bit for bit');
    assert.equal(blobs.subarray(fp32.byteLength).compare(Buffer.from(int64.buffer)), 0, 'INT64 bit for bit');
  });

  it('are the same bytes when gzip is asked for, and the server keeps serving', async () => {
    const plain = await postInference(passThroughUrl(), request());
    const encoded = request();
    const reply = await fetch(passThroughUrl(), {
      method: 'POST',
      headers: { 'accept-encoding': 'gzip', ...encoded.headers },
      body: encoded.body,
    });
    const body = new Uint8Array(await reply.arrayBuffer());
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get('content-encoding'), 'gzip');
    assert.equal(plain.status, 200, plain.error);
    // The header's JSON differs by its timings (queue_ms); the blobs after it must not.
    const headerLength = Number(reply.headers.get(HEADER_LENGTH_HEADER));
    assert.equal(body.length, headerLength + fp32.byteLength + int64.byteLength, 'fetch unzipped all of it');
    const blobs = Buffer.from(body.buffer, body.byteOffset + headerLength);
    assert.equal(blobs.compare(Buffer.concat([Buffer.from(fp32.buffer), Buffer.from(int64.buffer)])), 0);
    assert.deepEqual(plain.response!.outputs[0].data, fp32);
    assert.deepEqual(plain.response!.outputs[1].data, int64);
  });
});

/** A body of a JSON header and blobs, with the header length the client claims. */
async function postRaw(header: object, blobs: Buffer[], headerLength?: number) {
  const json = Buffer.from(JSON.stringify(header));
  return postInference(url, {
    body: Buffer.concat([json, ...blobs]),
    headers: {
      'content-type': 'application/octet-stream',
      [HEADER_LENGTH_HEADER]: String(headerLength ?? json.length),
    },
  });
}

describe('malformed binary bodies', () => {
  const fp32 = (size: number) => ({
    name: 'in_FP32',
    datatype: 'FP32',
    shape: [1, 3],
    parameters: { binary_data_size: size },
  });
  const bytes = (size: number) => ({
    name: 'in_BYTES',
    datatype: 'BYTES',
    shape: [1, 2],
    parameters: { binary_data_size: size },
  });
  const lengthPrefixed = (...parts: Array<[number, string]>) =>
    Buffer.concat(
      parts.flatMap(([declared, text]) => {
        const prefix = Buffer.alloc(4);
        prefix.writeUInt32LE(declared);
        return [prefix, Buffer.from(text)];
      }),
    );

  const cases: Array<[string, () => ReturnType<typeof postRaw>, string]> = [
    [
      'a header length larger than the body',
      () => postRaw({ inputs: [fp32(12)] }, [Buffer.alloc(12)], 5000),
      'Inference-Header-Content-Length is 5000 but the body has only 112 bytes',
    ],
    [
      'a blob size that disagrees with the shape',
      () => postRaw({ inputs: [fp32(8)] }, [Buffer.alloc(8)]),
      'inputs[0] ("in_FP32"): parameters.binary_data_size is 8 but shape [1,3] of FP32 needs 12 bytes',
    ],
    [
      'a blob size larger than what the body holds',
      () => postRaw({ inputs: [fp32(12)] }, [Buffer.alloc(4)]),
      'inputs[0] ("in_FP32"): parameters.binary_data_size is 12 but only 4 bytes of the body are left for it',
    ],
    [
      'a truncated BYTES element',
      () => {
        const blob = lengthPrefixed([1, 'a'], [10, 'abc']);
        return postRaw({ inputs: [bytes(blob.length)] }, [blob]);
      },
      'inputs[0] ("in_BYTES") shape [1,2]: BYTES element 1 declares 10 bytes but only 3 are left in its blob',
    ],
    [
      'a truncated BYTES length prefix',
      () => {
        const blob = Buffer.concat([lengthPrefixed([1, 'a']), Buffer.from([2, 0])]);
        return postRaw({ inputs: [bytes(blob.length)] }, [blob]);
      },
      'inputs[0] ("in_BYTES") shape [1,2]: BYTES element 1 has a truncated length prefix (2 of 4 bytes)',
    ],
    [
      'bytes after the last blob',
      () => postRaw({ inputs: [fp32(12)] }, [Buffer.alloc(16)]),
      'the body has 4 bytes after the last binary input (the 100-byte JSON header lists 12 bytes of binary data)',
    ],
  ];

  for (const [name, send, message] of cases) {
    it(`refuses ${name} with 400 naming it, and keeps serving`, async () => {
      const answer = await send();
      assert.equal(answer.status, 400);
      assert.equal(answer.error, message);
    });
  }

  it('still serves after all of them', async () => {
    const answer = await postInference(url, encodeRequest({ inputs: inputs() }, 'binary'));
    assert.equal(answer.status, 200, answer.error);
  });
});

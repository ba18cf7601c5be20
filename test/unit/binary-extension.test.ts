import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  binaryOutputSelector,
  decodeBinaryRequest,
  decodeBinaryResponse,
  decodeRawBody,
  encodeBinaryRequest,
  encodeBinaryResponse,
  encodeBlob,
  parseHeaderLength,
  type EncodedBody,
} from '../../src/protocol/binary-extension.js';
import type { Datatype, NamedTensor, TensorData } from '../../src/protocol/datatypes.js';
import { parseInferenceRequest, type InferenceRequest } from '../../src/protocol/json-codec.js';
import { pendingBytesOf } from '../../src/protocol/tensor-bytes.js';
import { concatAlongBatch } from '../../src/scheduler/tensor-batch.js';
import { assertInvalid } from '../helpers/assert-invalid.js';

/** The body as one Buffer, placed at `shift` bytes into a fresh ArrayBuffer to control alignment. */
function bodyOf(encoded: EncodedBody, shift = 0): Buffer {
  const bytes = Buffer.concat(encoded.chunks);
  assert.equal(bytes.length, encoded.byteLength);
  const backing = new ArrayBuffer(bytes.length + shift);
  const body = Buffer.from(backing, shift, bytes.length);
  bytes.copy(body);
  return body;
}

/** A body built by hand: a JSON header and raw blobs, for the malformed cases. */
function handBuilt(header: unknown, ...blobs: Uint8Array[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...blobs]), headerLength: json.length };
}

/** Byte equality of big arrays; assert.deepEqual would spend minutes diffing a mismatch. */
function assertSameFloats(actual: TensorData, expected: Float32Array): void {
  assert.ok(actual instanceof Float32Array, `got ${actual.constructor.name}`);
  assert.equal(
    Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).compare(Buffer.from(expected.buffer)),
    0,
    'the data differ',
  );
}

function littleEndianUint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value);
  return bytes;
}

/** Four elements of each datatype, the 64-bit extremes among them. */
const TENSORS: Record<Datatype, TensorData> = {
  BOOL: new Uint8Array([1, 0, 0, 1]),
  UINT8: new Uint8Array([0, 255, 1, 128]),
  UINT16: new Uint16Array([0, 65535, 1, 256]),
  UINT32: new Uint32Array([0, 4294967295, 1, 65536]),
  UINT64: new BigUint64Array([0n, 18446744073709551615n, 9007199254740993n, 1n]),
  INT8: new Int8Array([-128, 127, 0, -1]),
  INT16: new Int16Array([-32768, 32767, 0, -1]),
  INT32: new Int32Array([-2147483648, 2147483647, 0, -1]),
  INT64: new BigInt64Array([9007199254740993n, -9223372036854775808n, 9223372036854775807n, -1n]),
  FP16: new Uint16Array([0x3c00, 0xc100, 0x7bff, 0x7e00]),
  FP32: new Float32Array([1.5, -Infinity, NaN, 3.4028234663852886e38]),
  FP64: new Float64Array([0.1, -0, Infinity, 1e-300]),
  BYTES: ['hello', '', 'héllo ✓', '\u0000binary\u0001'],
};
const DATATYPE_LIST = Object.keys(TENSORS) as Datatype[];
const tensorsOf = (shape: number[]): NamedTensor[] =>
  DATATYPE_LIST.map((datatype) => ({ name: `t_${datatype}`, datatype, shape, data: TENSORS[datatype] }));

describe('binary requests', () => {
  for (const datatype of DATATYPE_LIST) {
    test(`${datatype}: client encode → server decode, at every alignment`, () => {
      const input: NamedTensor = { name: 'x', datatype, shape: [2, 2], data: TENSORS[datatype] };
      const encoded = encodeBinaryRequest({ inputs: [input] });
      for (let shift = 0; shift < 8; shift++) {
        const decoded = decodeBinaryRequest(bodyOf(encoded, shift), encoded.headerLength);
        assert.deepEqual(decoded.inputs, [input]);
        assert.equal(decoded.header.inputs[0].data, undefined);
      }
    });
  }

  test('every datatype in one body, half binary and half JSON', () => {
    const inputs = tensorsOf([4]);
    const binaryNames = new Set(inputs.filter((_, index) => index % 2 === 0).map((input) => input.name));
    const encoded = encodeBinaryRequest({ id: 'r', inputs, outputs: [{ name: 'y' }] }, (name) => binaryNames.has(name));
    const decoded = decodeBinaryRequest(bodyOf(encoded), encoded.headerLength);
    assert.deepEqual(decoded.inputs, inputs);
    decoded.header.inputs.forEach((header) => {
      assert.equal(header.parameters?.binary_data_size !== undefined, binaryNames.has(header.name));
      assert.equal(header.data !== undefined, !binaryNames.has(header.name));
    });
    assert.equal(decoded.header.id, 'r');
  });

  test('aligned blobs are views of the body; unaligned ones are aligned copies', () => {
    const input: NamedTensor = { name: 'x', datatype: 'FP32', shape: [4], data: new Float32Array([1, 2, 3, 4]) };
    const encoded = encodeBinaryRequest({ inputs: [input] });
    const shiftToAlign = (4 - (encoded.headerLength % 4)) % 4;
    const aligned = bodyOf(encoded, shiftToAlign);
    const view = decodeBinaryRequest(aligned, encoded.headerLength).inputs[0].data as Float32Array;
    assert.equal(view.buffer, aligned.buffer);
    const unaligned = bodyOf(encoded, shiftToAlign + 1);
    const copy = decodeBinaryRequest(unaligned, encoded.headerLength).inputs[0].data as Float32Array;
    assert.notEqual(copy.buffer, unaligned.buffer);
    assert.equal(copy.byteOffset % 4, 0);
    assert.deepEqual(copy, input.data);
  });

  // Every numeric datatype at every misalignment its element size allows, with the values that break
  // a wrong path: FP16 bit patterns (NaN, -0, subnormal), INT64/UINT64 beyond 2^53, BOOL 0/1.
  type Numeric = Exclude<TensorData, string[]>;
  const EXACT: [Datatype, Numeric, Numeric][] = [
    ['FP32', new Float32Array([1.5, -0, NaN]), new Float32Array([Infinity, 3.4028234663852886e38])],
    ['FP64', new Float64Array([Math.PI, -0]), new Float64Array([Number.MIN_VALUE, NaN, 1e308])],
    ['FP16', new Uint16Array([0x7e00, 0x8000, 0x0001]), new Uint16Array([0x3c00, 0xfbff])],
    ['INT64', new BigInt64Array([-(2n ** 63n), 2n ** 53n + 1n]), new BigInt64Array([2n ** 63n - 1n])],
    ['UINT64', new BigUint64Array([2n ** 64n - 1n]), new BigUint64Array([0n, 2n ** 53n + 1n])],
    ['INT32', new Int32Array([-(2 ** 31), 7]), new Int32Array([2 ** 31 - 1])],
    ['UINT32', new Uint32Array([2 ** 32 - 1]), new Uint32Array([0, 1])],
    ['INT16', new Int16Array([-32768, 1]), new Int16Array([32767])],
    ['UINT16', new Uint16Array([65535]), new Uint16Array([0, 9])],
    ['INT8', new Int8Array([-128, 127]), new Int8Array([0])],
    ['UINT8', new Uint8Array([255]), new Uint8Array([0, 1])],
    ['BOOL', new Uint8Array([1, 0]), new Uint8Array([1])],
  ];
  for (const [datatype, first, second] of EXACT) {
    test(`${datatype}: unaligned blobs are copied once, into the batch, bit for bit`, () => {
      const request = (data: TensorData, shift: number) => {
        const input: NamedTensor = { name: 'x', datatype, shape: [data.length], data };
        const encoded = encodeBinaryRequest({ inputs: [input] });
        const body = bodyOf(encoded, shift);
        return decodeBinaryRequest(body, encoded.headerLength).inputs;
      };
      const bytesOf = (data: TensorData) => {
        const view = data as Numeric;
        return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
      };
      const elementSize = first.BYTES_PER_ELEMENT;
      let unalignedSeen = 0;
      for (let shift = 0; shift < 8; shift++) {
        const a = request(first, shift);
        const b = request(second, shift + 1);
        const unalignedA = pendingBytesOf(a[0]) !== undefined;
        if (unalignedA) unalignedSeen++;
        const batch = concatAlongBatch([a, b]);
        assert.equal(pendingBytesOf(a[0]) !== undefined, unalignedA, 'batching made no aligned copy of a');
        assert.deepEqual(batch[0].shape, [first.length + second.length]);
        assert.equal(batch[0].data.constructor, first.constructor);
        assert.deepEqual(
          bytesOf(batch[0].data),
          Buffer.concat([bytesOf(first), bytesOf(second)]),
          `${datatype} shifted by ${shift}`,
        );
        // A lone request's tensor passes as it is; reading it makes the one aligned copy.
        const [alone] = concatAlongBatch([a]);
        assert.equal(alone, a[0]);
        assert.equal((alone.data as Numeric).byteOffset % elementSize, 0);
        assert.deepEqual(bytesOf(alone.data), bytesOf(first));
        assert.equal(pendingBytesOf(alone), undefined);
        assert.equal(alone.data, alone.data, 'the aligned copy is made once and kept');
      }
      // Eight shifts put every element size at every misalignment; bytes are never misaligned.
      assert.equal(unalignedSeen, elementSize === 1 ? 0 : 8 - 8 / elementSize);
    });
  }

  test('an unaligned raw body is read once its elements are asked for, and keeps its shape', () => {
    const values = new Float32Array([1, -2, 3.25, NaN]);
    const backing = Buffer.alloc(values.byteLength + 1);
    const body = backing.subarray(1);
    Buffer.from(values.buffer).copy(body);
    const tensor = decodeRawBody(body, { name: 'x', datatype: 'FP32', shape: [-1, 2] });
    assert.deepEqual(pendingBytesOf(tensor), body);
    assert.deepEqual({ ...tensor }, { name: 'x', datatype: 'FP32', shape: [2, 2], data: values });
    assert.equal(pendingBytesOf(tensor), undefined);
  });

  test('a header length equal to the body length means JSON only', () => {
    const text = Buffer.from('{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[-9223372036854775808]}]}');
    const decoded = decodeBinaryRequest(text, text.length);
    assert.deepEqual(decoded.inputs[0].data, new BigInt64Array([-9223372036854775808n]));
  });

  test('the BYTES blob layout is a 4-byte little-endian length, then UTF-8', () => {
    assert.deepEqual(
      encodeBlob('BYTES', ['ab', 'é']),
      new Uint8Array([2, 0, 0, 0, 0x61, 0x62, 2, 0, 0, 0, 0xc3, 0xa9]),
    );
    assert.deepEqual(
      encodeBlob('INT64', new BigInt64Array([-2n])),
      new Uint8Array([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    );
    assert.deepEqual(encodeBlob('BOOL', new Uint8Array([1, 0])), new Uint8Array([1, 0]));
  });

  const x4 = { name: 'x', shape: [4], datatype: 'FP32', parameters: { binary_data_size: 16 } };
  const s2 = { name: 's', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: 0 } };
  const sixteen = Buffer.alloc(16);
  const BAD_BODIES: [what: string, built: { body: Buffer; headerLength: number }, message: string][] = [
    [
      'a blob size that disagrees with the shape',
      handBuilt({ inputs: [{ ...x4, parameters: { binary_data_size: 12 } }] }, Buffer.alloc(12)),
      'inputs[0] ("x"): parameters.binary_data_size is 12 but shape [4] of FP32 needs 16 bytes',
    ],
    [
      'a blob that runs past the end',
      handBuilt({ inputs: [x4] }, Buffer.alloc(10)),
      'inputs[0] ("x"): parameters.binary_data_size is 16 but only 10 bytes of the body are left for it',
    ],
    [
      'a second blob that runs past the end',
      handBuilt({ inputs: [x4, { ...x4, name: 'y' }] }, sixteen, Buffer.alloc(4)),
      'inputs[1] ("y"): parameters.binary_data_size is 16 but only 4 bytes of the body are left for it',
    ],
    [
      'bytes after the last blob',
      handBuilt({ inputs: [x4] }, sixteen, Buffer.alloc(3)),
      'the body has 3 bytes after the last binary input',
    ],
    [
      'bytes after a JSON-only header',
      handBuilt({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }, Buffer.alloc(2)),
      'the body has 2 bytes after the last binary input',
    ],
    [
      'both data and binary_data_size',
      handBuilt({ inputs: [{ ...x4, data: [1, 2, 3, 4] }] }, sixteen),
      'inputs[0] ("x") has both data and parameters.binary_data_size; send one',
    ],
    [
      'a negative binary_data_size',
      handBuilt({ inputs: [{ ...x4, parameters: { binary_data_size: -1 } }] }),
      'inputs[0] ("x"): parameters.binary_data_size must be a non-negative integer, got -1',
    ],
    [
      'a string binary_data_size',
      handBuilt({ inputs: [{ ...x4, parameters: { binary_data_size: '16' } }] }, sixteen),
      'inputs[0] ("x"): parameters.binary_data_size must be a non-negative integer, got "16"',
    ],
    [
      'a truncated BYTES length prefix',
      handBuilt({ inputs: [{ ...s2, parameters: { binary_data_size: 7 } }] }, littleEndianUint32(0), Buffer.alloc(3)),
      'inputs[0] ("s") shape [2]: BYTES element 1 has a truncated length prefix (3 of 4 bytes)',
    ],
    [
      'a BYTES length that overruns its blob',
      handBuilt(
        { inputs: [{ ...s2, parameters: { binary_data_size: 9 } }, x4] },
        littleEndianUint32(1),
        Buffer.from('a'),
        littleEndianUint32(20),
        sixteen,
      ),
      'inputs[0] ("s") shape [2]: BYTES element 1 declares 20 bytes but only 0 are left in its blob',
    ],
    [
      'too few BYTES elements',
      handBuilt({ inputs: [{ ...s2, parameters: { binary_data_size: 5 } }] }, littleEndianUint32(1), Buffer.from('a')),
      'inputs[0] ("s") shape [2]: the BYTES blob holds 1 elements but the shape needs 2',
    ],
    [
      'too many BYTES elements',
      handBuilt(
        { inputs: [{ ...s2, parameters: { binary_data_size: 12 } }] },
        littleEndianUint32(0),
        littleEndianUint32(0),
        littleEndianUint32(0),
      ),
      'inputs[0] ("s") shape [2]: the BYTES blob has 4 bytes left over after its 2 elements',
    ],
    [
      'a BOOL byte that is not 0 or 1',
      handBuilt(
        { inputs: [{ name: 'b', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } }] },
        Buffer.from([0, 1, 2]),
      ),
      'inputs[0] ("b"): BOOL element 2 is byte 2; BOOL bytes must be 0 or 1',
    ],
    [
      'a malformed JSON header',
      { body: Buffer.from('{"inputs":]xxxx'), headerLength: 11 },
      'malformed JSON in request body: Unexpected token ] at position 10',
    ],
    [
      'a header length that cuts the JSON short',
      { body: Buffer.from('{"inputs":[]}'), headerLength: 5 },
      'malformed JSON in request body: Unterminated string starting at position 1',
    ],
    [
      'a header length beyond the body',
      { body: Buffer.from('{}'), headerLength: 3 },
      'Inference-Header-Content-Length is 3 but the body has only 2 bytes',
    ],
  ];
  for (const [what, { body, headerLength }, message] of BAD_BODIES) {
    test(`refuses ${what}`, () => assertInvalid(() => decodeBinaryRequest(body, headerLength), message));
  }
});

describe('parseHeaderLength', () => {
  test('accepts absent, zero and in-range lengths', () => {
    assert.equal(parseHeaderLength(undefined, 10), undefined);
    assert.equal(parseHeaderLength('0', 10), 0);
    assert.equal(parseHeaderLength(' 10 ', 10), 10);
  });
  const BAD: [value: string | string[], message: string][] = [
    ['-1', 'Inference-Header-Content-Length must be a non-negative integer, got "-1"'],
    ['1.5', 'Inference-Header-Content-Length must be a non-negative integer, got "1.5"'],
    ['abc', 'Inference-Header-Content-Length must be a non-negative integer, got "abc"'],
    ['', 'Inference-Header-Content-Length must be a non-negative integer, got ""'],
    ['1e3', 'Inference-Header-Content-Length must be a non-negative integer, got "1e3"'],
    [
      '99999999999999999999',
      'Inference-Header-Content-Length must be a non-negative integer, got "99999999999999999999"',
    ],
    ['11', 'Inference-Header-Content-Length is 11 but the body has only 10 bytes'],
    [['1', '2'], 'Inference-Header-Content-Length appears more than once'],
  ];
  for (const [value, message] of BAD) {
    test(`refuses ${JSON.stringify(value)}`, () => assertInvalid(() => parseHeaderLength(value, 10), message));
  }
});

describe('raw bodies (Inference-Header-Content-Length: 0)', () => {
  test('fills the one variable dimension from the byte length', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const tensor = decodeRawBody(Buffer.from(data.buffer), { name: 'x', datatype: 'FP32', shape: [-1, 3] });
    assert.deepEqual(tensor, { name: 'x', datatype: 'FP32', shape: [2, 3], data });
  });

  test('takes a fixed shape as it is, and copies an unaligned body', () => {
    const backing = Buffer.alloc(17);
    const body = backing.subarray(1);
    new BigInt64Array([-9223372036854775808n, 18446744073709551615n]).forEach((value, index) =>
      body.writeBigInt64LE(BigInt.asIntN(64, value), index * 8),
    );
    const tensor = decodeRawBody(body, { name: 'ids', datatype: 'UINT64', shape: [1, 2] });
    assert.deepEqual(tensor.data, new BigUint64Array([9223372036854775808n, 18446744073709551615n]));
  });

  test('BYTES: the elements fill the variable dimension', () => {
    const body = encodeBlob('BYTES', ['a', 'bc', '']);
    const tensor = decodeRawBody(body, { name: 's', datatype: 'BYTES', shape: [-1] });
    assert.deepEqual(tensor, { name: 's', datatype: 'BYTES', shape: [3], data: ['a', 'bc', ''] });
    assert.deepEqual(decodeRawBody(encodeBlob('BYTES', ['x']), { name: 's', datatype: 'BYTES', shape: [1] }).data, [
      'x',
    ]);
  });

  const BAD_RAW: [
    what: string,
    body: Buffer,
    input: { name: string; datatype: Datatype; shape: number[] },
    message: string,
  ][] = [
    [
      'two variable dimensions',
      Buffer.alloc(12),
      { name: 'x', datatype: 'FP32', shape: [-1, 3, -1] },
      'raw body for input "x" (FP32 [-1,3,-1]): a raw body can fill at most one variable dimension; send a JSON header with the shape',
    ],
    [
      'a partial element',
      Buffer.alloc(10),
      { name: 'x', datatype: 'FP32', shape: [-1] },
      'raw body for input "x" (FP32 [-1]): the body has 10 bytes, not a whole number of 4-byte elements',
    ],
    [
      'a partial row',
      Buffer.alloc(16),
      { name: 'x', datatype: 'FP32', shape: [-1, 3] },
      'raw body for input "x" (FP32 [-1,3]): the body holds 4 elements, not a whole multiple of 3',
    ],
    [
      'a fixed shape that does not fit',
      Buffer.alloc(16),
      { name: 'x', datatype: 'FP32', shape: [3] },
      'the body holds 4 elements but the shape needs 3',
    ],
    [
      'a zero dimension beside the variable one',
      Buffer.alloc(4),
      { name: 'x', datatype: 'FP32', shape: [-1, 0] },
      'the body holds 1 elements, not a whole multiple of 0',
    ],
    [
      'a truncated BYTES prefix',
      Buffer.from([1, 0]),
      { name: 's', datatype: 'BYTES', shape: [1] },
      'raw body for input "s" (BYTES [1]): BYTES element 0 has a truncated length prefix (2 of 4 bytes)',
    ],
    [
      'too many BYTES elements',
      Buffer.from(encodeBlob('BYTES', ['a', 'b'])),
      { name: 's', datatype: 'BYTES', shape: [1] },
      'the body holds 2 BYTES elements but the shape needs 1',
    ],
    [
      'a BOOL byte of 5',
      Buffer.from([5]),
      { name: 'b', datatype: 'BOOL', shape: [-1] },
      'BOOL element 0 is byte 5; BOOL bytes must be 0 or 1',
    ],
  ];
  for (const [what, body, input, message] of BAD_RAW) {
    test(`refuses ${what}`, () => assertInvalid(() => decodeRawBody(body, input), message));
  }
});

describe('binary responses', () => {
  const selectorFor = (request: unknown) => binaryOutputSelector(parseInferenceRequest(JSON.stringify(request)));
  const x = { name: 'x', shape: [1], datatype: 'FP32', data: [1] };

  test('binary_data_output sets all outputs; binary_data overrides it per output', () => {
    const none = selectorFor({ inputs: [x] });
    assert.equal(none('a'), false);
    const all = selectorFor({
      inputs: [x],
      parameters: { binary_data_output: true },
      outputs: [{ name: 'a' }, { name: 'b', parameters: { binary_data: false } }],
    });
    assert.deepEqual([all('a'), all('b'), all('c')], [true, false, true]);
    const some = selectorFor({
      inputs: [x],
      outputs: [{ name: 'a', parameters: { binary_data: true } }, { name: 'b' }],
    });
    assert.deepEqual([some('a'), some('b')], [true, false]);
  });

  test('refuses non-boolean binary flags', () => {
    assertInvalid(
      () => selectorFor({ inputs: [x], parameters: { binary_data_output: 'true' } }),
      'parameters.binary_data_output must be a boolean, got "true"',
    );
    assertInvalid(
      () => selectorFor({ inputs: [x], outputs: [{ name: 'a', parameters: { binary_data: 1 } }] }),
      'outputs[0].parameters.binary_data must be a boolean, got 1',
    );
  });

  test('every datatype: server encode → client decode, binary and JSON mixed', () => {
    const outputs = tensorsOf([2, 2]);
    const binaryNames = new Set(outputs.filter((_, index) => index % 3 !== 0).map((output) => output.name));
    const encoded = encodeBinaryResponse({ model_name: 'm', model_version: '1', id: 'r', outputs }, (name) =>
      binaryNames.has(name),
    );
    const decoded = decodeBinaryResponse(bodyOf(encoded, 3), encoded.headerLength);
    assert.deepEqual(decoded.outputs, outputs);
    assert.equal(decoded.header.model_name, 'm');
    for (const header of decoded.header.outputs) {
      assert.equal(header.parameters?.binary_data_size !== undefined, binaryNames.has(header.name), header.name);
      assert.equal(header.data !== undefined, !binaryNames.has(header.name), header.name);
    }
  });

  test('a numeric blob is the output storage itself, and binary_data_size joins existing parameters', () => {
    const data = new Float32Array([1, 2]);
    const encoded = encodeBinaryResponse(
      {
        model_name: 'm',
        outputs: [
          { name: 'y', datatype: 'FP32', shape: [2], data, parameters: { note: 'kept', binary_data_size: 99 } },
        ],
      },
      () => true,
    );
    assert.equal(encoded.chunks.length, 2);
    assert.equal(encoded.chunks[1].buffer, data.buffer);
    assert.equal(
      new TextDecoder().decode(encoded.chunks[0]),
      '{"model_name":"m","outputs":[{"name":"y","datatype":"FP32","shape":[2],"parameters":{"note":"kept","binary_data_size":8}}]}',
    );
    assert.equal(encoded.headerLength, encoded.chunks[0].length);
    assert.equal(encoded.byteLength, encoded.headerLength + 8);
  });

  test('without a header length the whole response body is JSON', () => {
    const encoded = encodeBinaryResponse({ model_name: 'm', outputs: tensorsOf([4]) }, () => false);
    assert.equal(encoded.chunks.length, 1);
    const decoded = decodeBinaryResponse(bodyOf(encoded), undefined);
    assert.deepEqual(decoded.outputs, tensorsOf([4]));
  });

  test('a large FP32 tensor round-trips through request and response', () => {
    const data = new Float32Array(3 * 640 * 640);
    for (let index = 0; index < data.length; index++) data[index] = index / 7;
    const request: InferenceRequest = { inputs: [{ name: 'images', datatype: 'FP32', shape: [1, 3, 640, 640], data }] };
    const encodedRequest = encodeBinaryRequest(request);
    const decodedRequest = decodeBinaryRequest(bodyOf(encodedRequest, 1), encodedRequest.headerLength);
    assertSameFloats(decodedRequest.inputs[0].data, data);
    const encodedResponse = encodeBinaryResponse({ model_name: 'm', outputs: decodedRequest.inputs }, () => true);
    const decodedResponse = decodeBinaryResponse(bodyOf(encodedResponse), encodedResponse.headerLength);
    assertSameFloats(decodedResponse.outputs[0].data, data);
  });
});

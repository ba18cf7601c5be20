import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  DATATYPES,
  float16BitsOf,
  numberOfFloat16Bits,
  type Datatype,
  type TensorData,
} from '../../src/protocol/datatypes.js';
import { ServeError } from '../../src/protocol/errors.js';
import { parseInferenceRequest, type TensorHeader } from '../../src/protocol/json-codec.js';
import { decodeJsonRequest, decodeJsonResponse, decodeJsonTensorData } from '../../src/protocol/json-decode.js';
import { encodeJsonRequest, encodeJsonResponse, encodeJsonTensorData } from '../../src/protocol/json-encode.js';
import { parseJsonText } from '../../src/protocol/json-parse.js';
import { assertInvalid } from '../helpers/assert-invalid.js';

/** Byte equality of big typed arrays; assert.deepEqual would spend minutes diffing a mismatch. */
function assertSameBytes(actual: TensorData, expected: TensorData): void {
  const bytes = (data: TensorData) =>
    Buffer.from((data as Uint8Array).buffer, (data as Uint8Array).byteOffset, (data as Uint8Array).byteLength);
  assert.equal(actual.constructor, expected.constructor);
  const mismatch = bytes(actual).compare(bytes(expected));
  assert.equal(mismatch, 0, `the ${actual.constructor.name}s differ`);
}

function requestText(inputs: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...extra, inputs });
}

describe('parseJsonText', () => {
  test('keeps integer literals beyond 2^53 exact as bigint, and safe ones as numbers', () => {
    const value = parseJsonText(
      '{"a":9007199254740993,"b":-9223372036854775808,"c":18446744073709551615,"d":9007199254740991,"e":-9007199254740991}',
      'request body',
    );
    assert.deepEqual(value, {
      a: 9007199254740993n,
      b: -9223372036854775808n,
      c: 18446744073709551615n,
      d: 9007199254740991,
      e: -9007199254740991,
    });
  });

  test('leaves digits in strings, fractions and exponents alone', () => {
    const text =
      '{"s":"12345678901234567890","t":"q\\"12345678901234567890\\"","u":[0.10000000149011612,12345678901234567.5,' +
      '1.2345678901234567e+30,12345678901234567e2,1e12345678901234567]}';
    assert.deepEqual(parseJsonText(text, 'request body'), {
      s: '12345678901234567890',
      t: 'q"12345678901234567890"',
      // Non-integer literals stay JSON.parse's doubles, precision loss included.
      u: [
        0.10000000149011612,
        Number('12345678901234567.5'),
        1.2345678901234567e30,
        Number('12345678901234567e2'),
        Infinity,
      ],
    });
  });

  test('the exact path agrees with JSON.parse on valid documents', () => {
    const documents = [
      '{}',
      '[]',
      ' [ 1 , -0 , 0.5e-3 , 2E+2 , true , false , null ] ',
      '{"a":{"b":[{"c":[]}]},"a2":"\\u00e9\\n\\t\\/\\\\\\"","":1}',
      '"\\ud83d\\ude00 😀"',
      '{"dup":1,"dup":2}',
      '[[[[[[1]]]]]]',
      '-12.5e-7',
    ];
    for (const document of documents) {
      // The 16-digit string sends the text down the exact (slow) path.
      const padded = `{"pad":"1234567890123456","doc":${document}}`;
      assert.deepEqual(parseJsonText(padded, 'request body'), JSON.parse(padded), document);
    }
  });

  test('keys such as __proto__ and constructor stay own properties', () => {
    for (const text of [
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"n":12345678901234567890}',
    ]) {
      const value = parseJsonText(text, 'request body') as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(value), Object.prototype);
      assert.ok(Object.prototype.hasOwnProperty.call(value, '__proto__'), 'no own __proto__ key');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    }
  });

  test('deep nesting on the exact path does not overflow the stack', () => {
    const depth = 200_000;
    const value = parseJsonText(`[12345678901234567890,${'['.repeat(depth)}${']'.repeat(depth)}]`, 'request body');
    assert.ok(Array.isArray(value), 'not an array');
  });

  const MALFORMED: [text: string, message: string][] = [
    ['', 'malformed JSON in request body: it is empty'],
    ['{"a":}', 'malformed JSON in request body: Unexpected token } at position 5'],
    ['{"inputs":[1,2,', 'Unexpected end of JSON input at position 15'],
    ['[1,2]x', 'Unexpected token x at position 5'],
    ['{"a":"\\x"}', 'Bad escaped character in string at position 7'],
    ['{"a":"\\u12G4"}', 'Bad Unicode escape in string at position 6'],
    ['{"a" 1}', 'Unexpected token 1 at position 5'],
    ['"abc', 'Unterminated string starting at position 0'],
    ['"a\nb"', 'Bad control character in string at position 2'],
    ['[1.]', 'Unexpected token ] at position 3'],
    ['[01]', 'Unexpected token 1 at position 2'],
    ['[-]', 'Unexpected token ] at position 2'],
    ['[1e]', 'Unexpected token ] at position 3'],
    ['[tru]', 'Unexpected token ] at position 4'],
    ['{"a":1,}', 'Unexpected token } at position 7'],
    ['[1,]', 'Unexpected token ] at position 3'],
    ["{'a':1}", "Unexpected token ' at position 1"],
    ['\ufeff{}', 'Unexpected token U+FEFF at position 0'],
    ['[NaN]', 'Unexpected token N at position 1'],
    ['{"a":1}}', 'Unexpected token } at position 7'],
  ];
  for (const [text, message] of MALFORMED) {
    test(`refuses ${JSON.stringify(text)}`, () => {
      assert.throws(() => JSON.parse(text)); // the table holds only text JSON.parse refuses too
      assertInvalid(() => parseJsonText(text, 'request body'), message);
    });
  }

  test('fuzz: the exact parser accepts and refuses what JSON.parse does', () => {
    let seed = 12345;
    const random = (below: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31; // a fixed LCG: the same cases every run
      return seed % below;
    };
    const pieces = [
      '{',
      '}',
      '[',
      ']',
      ',',
      ':',
      '"',
      '\\',
      'u',
      '0',
      '1',
      '-',
      '.',
      'e',
      '+',
      ' ',
      't',
      'n',
      'x',
      '"k"',
    ];
    const valid = [
      '{"a":[1,-2.5e3,"s\\"q",true,null,{}],"b":{"c":[[]]}}',
      '[0,1e-7,"\\u00e9",false]',
      '"x"',
      '-0.0e+0',
    ];
    for (let round = 0; round < 3000; round++) {
      const characters = [...valid[random(valid.length)]];
      for (let edits = 1 + random(3); edits > 0; edits--) {
        const at = random(characters.length + 1);
        if (random(2) === 0) characters.splice(at, 1);
        else characters.splice(at, 0, pieces[random(pieces.length)]);
      }
      const text = characters.join('');
      let expected: unknown;
      try {
        expected = JSON.parse(text);
      } catch {
        // Refused: the message must be the exact parser's (with a position), not V8's fallback.
        assert.throws(
          () => parseJsonText(text, 'request body'),
          (error: Error) => /(at position \d+|it is empty)$/.test(error.message),
          text,
        );
        continue;
      }
      // Accepted: the exact path (forced by a literal beyond 2^53) must give the same value.
      const value = parseJsonText(`[12345678901234567890,${text}]`, 'request body') as unknown[];
      assert.deepEqual(value, [12345678901234567890n, expected], text);
    }
  });

  test('the exact path reports the same problems', () => {
    // Prefixing `[12345678901234567890,` shifts every position by 22 and forces the exact path.
    assertInvalid(
      () => parseJsonText('[12345678901234567890,{"a":}]', 'request body'),
      'Unexpected token } at position 27',
    );
    assertInvalid(
      () => parseJsonText('[12345678901234567890,1,]', 'request body'),
      'Unexpected token ] at position 24',
    );
    assertInvalid(
      () => parseJsonText('[12345678901234567890', 'request body'),
      'Unexpected end of JSON input at position 21',
    );
  });
});

describe('parseInferenceRequest', () => {
  test('returns a typed header and keeps data, parameters and outputs', () => {
    const header = parseInferenceRequest(
      Buffer.from(
        JSON.stringify({
          id: 'r1',
          parameters: { priority: 1, binary_data_output: true, tag: 'x' },
          inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2], parameters: { k: 'v' } }],
          outputs: [{ name: 'y', parameters: { binary_data: false } }, { name: 'z' }],
          ignored: 'fields the protocol does not define are ignored',
        }),
      ),
    );
    assert.deepEqual(header, {
      id: 'r1',
      parameters: { priority: 1, binary_data_output: true, tag: 'x' },
      inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP32', data: [1, 2], parameters: { k: 'v' } }],
      outputs: [{ name: 'y', parameters: { binary_data: false } }, { name: 'z' }],
    });
  });

  const x = { name: 'x', shape: [2], datatype: 'FP32', data: [1, 2] };
  const BAD_HEADERS: [what: string, text: string, message: string][] = [
    ['an array body', '[1]', 'request body must be a JSON object, got [1]'],
    ['no inputs', '{}', 'inputs must be an array of tensors ([] for a model without inputs)'],
    [
      'inputs not an array',
      '{"inputs":{"name":"x"}}',
      'inputs must be an array of tensors ([] for a model without inputs), got {"name":"x"}',
    ],
    ['an input that is not an object', requestText([5]), 'inputs[0] must be an object, got 5'],
    [
      'a missing name',
      requestText([{ shape: [1], datatype: 'FP32' }]),
      'inputs[0].name must be a non-empty string, got nothing',
    ],
    ['an empty name', requestText([{ ...x, name: '' }]), 'inputs[0].name must be a non-empty string, got ""'],
    ['a numeric name', requestText([{ ...x, name: 7 }]), 'inputs[0].name must be a non-empty string, got 7'],
    [
      'a repeated name',
      requestText([x, { ...x, name: 'y' }, x]),
      'inputs[2].name "x" appears twice (first at inputs[0])',
    ],
    [
      'a string dimension',
      requestText([x, { ...x, name: 'y', shape: [1, 'a'] }]),
      'inputs[1].shape must be an array of non-negative integers, got [1,"a"]',
    ],
    [
      'a negative dimension',
      requestText([{ ...x, shape: [-1, 2] }]),
      'inputs[0].shape must be an array of non-negative integers, got [-1,2]',
    ],
    [
      'a fractional dimension',
      requestText([{ ...x, shape: [1.5] }]),
      'inputs[0].shape must be an array of non-negative integers, got [1.5]',
    ],
    [
      'a huge dimension',
      '{"inputs":[{"name":"x","shape":[12345678901234567890],"datatype":"FP32"}]}',
      'inputs[0].shape must be an array of non-negative integers, got [12345678901234567890]',
    ],
    [
      'no shape',
      requestText([{ name: 'x', datatype: 'FP32' }]),
      'inputs[0].shape must be an array of non-negative integers, got nothing',
    ],
    [
      'too many dimensions',
      requestText([{ ...x, shape: new Array(65).fill(1) }]),
      'inputs[0].shape has 65 dimensions; at most 64 are supported',
    ],
    [
      'a zero dimension beside an overflowing one',
      requestText([{ ...x, shape: [0, 3, 48, 2 ** 40] }]),
      'inputs[0].shape[0] is 0 in [0,3,48,1099511627776]; every dimension must be at least 1 (empty tensors are not run)',
    ],
    [
      'too many elements',
      requestText([{ ...x, shape: [2 ** 30, 2 ** 30, 2 ** 30] }]),
      'inputs[0].shape [1073741824,1073741824,1073741824] holds more than 2^53 elements',
    ],
    [
      'an unknown datatype',
      requestText([{ ...x, datatype: 'FLOAT32' }]),
      'inputs[0].datatype must be one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES, got "FLOAT32"',
    ],
    ['a lower-case datatype', requestText([{ ...x, datatype: 'fp32' }]), 'inputs[0].datatype must be one of BOOL'],
    [
      'BF16',
      requestText([{ ...x, datatype: 'BF16' }]),
      '"BF16" is not supported by onnxruntime-node (inputs[0].datatype); send FP32 or FP16',
    ],
    [
      'non-object parameters',
      requestText([{ ...x, parameters: [1] }]),
      'inputs[0].parameters must be an object, got [1]',
    ],
    [
      'a null parameter',
      requestText([{ ...x, parameters: { a: null } }]),
      'inputs[0].parameters.a must be a string, number or boolean, got null',
    ],
    [
      'an object parameter',
      requestText([x], { parameters: { 'odd key': { a: 1 } } }),
      'parameters["odd key"] must be a string, number or boolean, got {"a":1}',
    ],
    [
      'a parameter beyond 2^53',
      '{"parameters":{"seed":12345678901234567890},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[0]}]}',
      'parameters.seed is 12345678901234567890, beyond the ±2^53 range of parameter numbers; send it as a string',
    ],
    ['a numeric id', requestText([x], { id: 5 }), 'id must be a string, got 5'],
    [
      'outputs not an array',
      requestText([x], { outputs: { name: 'y' } }),
      'outputs must be an array, got {"name":"y"}',
    ],
    [
      'an output without a name',
      requestText([x], { outputs: [{}] }),
      'outputs[0].name must be a non-empty string, got nothing',
    ],
    [
      'a repeated output',
      requestText([x], { outputs: [{ name: 'y' }, { name: 'y' }] }),
      'outputs[1].name "y" appears twice (first at outputs[0])',
    ],
    [
      'bad output parameters',
      requestText([x], { outputs: [{ name: 'y', parameters: 'binary' }] }),
      'outputs[0].parameters must be an object, got "binary"',
    ],
    [
      'malformed JSON',
      '{"inputs":[{"name":"x",}]}',
      'malformed JSON in request body: Unexpected token } at position 23',
    ],
  ];
  for (const [what, text, message] of BAD_HEADERS) {
    test(`refuses ${what}`, () => assertInvalid(() => parseInferenceRequest(text), message));
  }

  test('long values in messages are cut short', () => {
    const text = requestText([{ ...x, shape: ['a'.repeat(500)] }]);
    assert.throws(
      () => parseInferenceRequest(text),
      (error: Error) => error.message.length < 200 && error.message.endsWith('…'),
    );
  });
});

describe('float16 conversion', () => {
  const CASES: [value: number, bits: number, back: number][] = [
    [1.0, 0x3c00, 1.0],
    [-2.5, 0xc100, -2.5],
    [65504, 0x7bff, 65504],
    [6.1e-5, 0x03ff, 1023 * 2 ** -24], // below 2^-14: subnormal
    [2 ** -14, 0x0400, 2 ** -14], // smallest normal
    [2 ** -24, 0x0001, 2 ** -24], // smallest subnormal
    [2 ** -25, 0x0000, 0], // halfway to the smallest subnormal: ties to even (0)
    [3 * 2 ** -25, 0x0002, 2 ** -23], // halfway between 1 and 2 subnormal steps: ties to even (2)
    [1 + 2 ** -11, 0x3c00, 1], // halfway between 1 and its successor: ties to even
    [1 + 3 * 2 ** -11, 0x3c02, 1 + 2 ** -9], // halfway, odd below: rounds up
    [65519, 0x7bff, 65504], // below the overflow threshold
    [65520, 0x7c00, Infinity], // the overflow threshold rounds to Infinity
    [Infinity, 0x7c00, Infinity],
    [-Infinity, 0xfc00, -Infinity],
    [-0, 0x8000, -0],
    [0.1, 0x2e66, 0.0999755859375],
  ];
  for (const [value, bits, back] of CASES) {
    test(`${value} ↔ 0x${bits.toString(16)}`, () => {
      assert.equal(float16BitsOf(value), bits);
      assert.ok(Object.is(numberOfFloat16Bits(bits), back), `decoded ${numberOfFloat16Bits(bits)}`);
    });
  }

  test('NaN', () => {
    assert.equal(float16BitsOf(NaN), 0x7e00);
    assert.ok(Number.isNaN(numberOfFloat16Bits(0x7e00)), '0x7e00 is not NaN');
    assert.ok(Number.isNaN(numberOfFloat16Bits(0xfc01)), '0xfc01 is not NaN');
  });

  test('every finite half survives number → bits → number', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue; // Infinity and NaN, tested above
      assert.equal(float16BitsOf(numberOfFloat16Bits(bits)), bits);
    }
  });
});

/** One sample per datatype: the JSON data a client may send, what it decodes to, and the JSON we send back. */
const SAMPLES: Record<Datatype, { sent: string; decoded: TensorData; written: string }> = {
  BOOL: { sent: '[true,false,1,0]', decoded: new Uint8Array([1, 0, 1, 0]), written: '[true,false,true,false]' },
  UINT8: { sent: '[0,255,7,128]', decoded: new Uint8Array([0, 255, 7, 128]), written: '[0,255,7,128]' },
  UINT16: { sent: '[0,65535,-0,1]', decoded: new Uint16Array([0, 65535, 0, 1]), written: '[0,65535,0,1]' },
  UINT32: {
    sent: '[0,4294967295,2,3]',
    decoded: new Uint32Array([0, 4294967295, 2, 3]),
    written: '[0,4294967295,2,3]',
  },
  UINT64: {
    sent: '[0,18446744073709551615,"18446744073709551614",9007199254740993]',
    decoded: new BigUint64Array([0n, 18446744073709551615n, 18446744073709551614n, 9007199254740993n]),
    written: '[0,18446744073709551615,18446744073709551614,9007199254740993]',
  },
  INT8: { sent: '[-128,127,0,-1]', decoded: new Int8Array([-128, 127, 0, -1]), written: '[-128,127,0,-1]' },
  INT16: {
    sent: '[-32768,32767,0,-1]',
    decoded: new Int16Array([-32768, 32767, 0, -1]),
    written: '[-32768,32767,0,-1]',
  },
  INT32: {
    sent: '[-2147483648,2147483647,0,-1]',
    decoded: new Int32Array([-2147483648, 2147483647, 0, -1]),
    written: '[-2147483648,2147483647,0,-1]',
  },
  INT64: {
    sent: '[9007199254740993,-9223372036854775808,"9223372036854775807",-5]',
    decoded: new BigInt64Array([9007199254740993n, -9223372036854775808n, 9223372036854775807n, -5n]),
    written: '[9007199254740993,-9223372036854775808,9223372036854775807,-5]',
  },
  FP16: {
    sent: '[1.0,-2.5,65504,6.1e-5]',
    decoded: new Uint16Array([0x3c00, 0xc100, 0x7bff, 0x03ff]),
    // 1023·2^-24 = 0.00006097555160522461, printed as its shortest float32 decimal.
    written: '[1,-2.5,65504,0.00006097555]',
  },
  FP32: {
    sent: '[0.5,"NaN","-Infinity",0.1]',
    decoded: new Float32Array([0.5, NaN, -Infinity, 0.1]),
    // 0.1f is 0.10000000149011612 as a float64; 0.1 reads back as the same float32.
    written: '[0.5,"NaN","-Infinity",0.1]',
  },
  FP64: {
    sent: '[0.1,1e308,-0,"Infinity"]',
    decoded: new Float64Array([0.1, 1e308, -0, Infinity]),
    written: '[0.1,1e+308,-0,"Infinity"]',
  },
  BYTES: {
    sent: '["hello","","héllo ✓","a\\"b"]',
    decoded: ['hello', '', 'héllo ✓', 'a"b'],
    written: '["hello","","héllo ✓","a\\"b"]',
  },
};

describe('decodeJsonTensorData and encodeJsonTensorData', () => {
  for (const datatype of Object.keys(SAMPLES) as Datatype[]) {
    const { sent, decoded, written } = SAMPLES[datatype];
    test(`${datatype}: JSON → tensor → JSON`, () => {
      const request = decodeJsonRequest(
        `{"inputs":[{"name":"t","shape":[2,2],"datatype":"${datatype}","data":${sent}}]}`,
      );
      const [tensor] = request.inputs;
      assert.deepEqual(tensor, { name: 't', datatype, shape: [2, 2], data: decoded });
      assert.equal(encodeJsonTensorData(datatype, tensor.data), written);

      const responseText = encodeJsonResponse({ model_name: 'm', outputs: [tensor] });
      const response = decodeJsonResponse(responseText);
      assert.deepEqual(response.outputs, [tensor]);
    });

    test(`${datatype}: nested data decodes like flat data`, () => {
      const flat = parseJsonText(sent, 'request body') as unknown[];
      const nested = [flat.slice(0, 2), flat.slice(2, 4)];
      const a = decodeJsonTensorData({ name: 't', datatype, shape: [2, 2], data: flat }, 0);
      const b = decodeJsonTensorData({ name: 't', datatype, shape: [2, 2], data: nested }, 0);
      assert.deepEqual(b, a);
    });
  }

  test('a rank-3 nested tensor and a scalar', () => {
    const nested = decodeJsonTensorData(
      { name: 'x', datatype: 'INT32', shape: [2, 1, 3], data: [[[1, 2, 3]], [[4, 5, 6]]] },
      0,
    );
    assert.deepEqual(nested.data, new Int32Array([1, 2, 3, 4, 5, 6]));
    const scalar = decodeJsonTensorData({ name: 'x', datatype: 'FP32', shape: [], data: [2.5] }, 0);
    assert.deepEqual(scalar.data, new Float32Array([2.5]));
    const empty = decodeJsonTensorData({ name: 'x', datatype: 'FP32', shape: [0, 3], data: [] }, 0);
    assert.deepEqual(empty.data, new Float32Array(0));
  });

  test('without an index, messages name the input by name', () => {
    assertInvalid(
      () => decodeJsonTensorData({ name: 'x', datatype: 'UINT8', shape: [1], data: [256] }),
      'input "x": element 0 is 256, out of range for UINT8 [0, 255]',
    );
  });

  const tensor = (datatype: Datatype, shape: number[], data: unknown, name = 'x'): TensorHeader => ({
    name,
    datatype,
    shape,
    data,
  });
  const BAD_DATA: [what: string, input: TensorHeader, message: string][] = [
    [
      'no data',
      tensor('FP32', [2], undefined),
      'inputs[0] ("x") has no data; send data or parameters.binary_data_size',
    ],
    ['data that is not an array', tensor('FP32', [1], 5), 'inputs[0] ("x"): data must be an array, got 5'],
    [
      'too few elements',
      tensor('FP32', [2, 3], [1, 2, 3, 4, 5]),
      'inputs[0] ("x"): data has 5 elements but shape [2,3] needs 6',
    ],
    ['too many elements', tensor('FP32', [2], [1, 2, 3]), 'data has 3 elements but shape [2] needs 2'],
    [
      'UINT8 out of range',
      tensor('UINT8', [4], [1, 2, 3, 300], 'ids'),
      'inputs[0] ("ids"): element 3 is 300, out of range for UINT8 [0, 255]',
    ],
    ['INT8 out of range', tensor('INT8', [1], [-129]), 'element 0 is -129, out of range for INT8 [-128, 127]'],
    ['UINT32 negative', tensor('UINT32', [1], [-1]), 'element 0 is -1, out of range for UINT32 [0, 4294967295]'],
    [
      'INT32 bigint',
      tensor('INT32', [1], [12345678901234567890n]),
      'element 0 is 12345678901234567890, out of range for INT32',
    ],
    ['INT32 fraction', tensor('INT32', [2], [1, 1.5]), 'element 1 is 1.5, expected an integer for INT32'],
    ['INT16 string', tensor('INT16', [1], ['1']), 'element 0 is "1", expected an integer for INT16'],
    [
      'INT64 beyond range',
      tensor('INT64', [1], [9223372036854775808n]),
      'element 0 is 9223372036854775808, out of range for INT64 [-9223372036854775808, 9223372036854775807]',
    ],
    [
      'INT64 string beyond range',
      tensor('INT64', [1], ['-9223372036854775809']),
      'element 0 is "-9223372036854775809", out of range for INT64',
    ],
    [
      'UINT64 negative',
      tensor('UINT64', [1], [-1]),
      'element 0 is -1, out of range for UINT64 [0, 18446744073709551615]',
    ],
    [
      'UINT64 beyond range',
      tensor('UINT64', [1], [18446744073709551616n]),
      'element 0 is 18446744073709551616, out of range for UINT64',
    ],
    [
      'INT64 unsafe float',
      tensor('INT64', [1], [1e20]),
      'element 0 is 100000000000000000000, expected an exact integer; send INT64 values beyond 2^53 as integer literals or decimal strings',
    ],
    [
      'INT64 fraction',
      tensor('INT64', [1], [0.5]),
      'element 0 is 0.5, expected an integer or a decimal string for INT64',
    ],
    [
      'INT64 non-decimal string',
      tensor('INT64', [1], ['0x10']),
      'element 0 is "0x10", expected an integer or a decimal string for INT64',
    ],
    ['BOOL 2', tensor('BOOL', [2], [true, 2]), 'element 1 is 2, expected true, false, 0 or 1 for BOOL'],
    ['BOOL string', tensor('BOOL', [1], ['true']), 'element 0 is "true", expected true, false, 0 or 1 for BOOL'],
    [
      'FP32 string',
      tensor('FP32', [1], ['1.5']),
      'element 0 is "1.5", expected a number or "NaN", "Infinity", "-Infinity" for FP32',
    ],
    ['FP32 null', tensor('FP32', [1], [null]), 'element 0 is null, expected a number or "NaN"'],
    [
      'FP32 too large',
      tensor('FP32', [1], [1e39]),
      'element 0 is 1e+39, out of range for FP32 [-3.4028234663852886e+38, 3.4028234663852886e+38]',
    ],
    ['FP16 too large', tensor('FP16', [1], [-70000]), 'element 0 is -70000, out of range for FP16 [-65504, 65504]'],
    [
      'FP16 string',
      tensor('FP16', [1], ['inf']),
      'element 0 is "inf", expected a number or "NaN", "Infinity", "-Infinity" for FP16',
    ],
    ['BYTES number', tensor('BYTES', [1], [5]), 'element 0 is 5, expected a string for BYTES'],
    [
      'an array in flat data',
      tensor('FP32', [2], [1, [2]]),
      'element 1 is an array; data must be flat, or nested exactly like shape [2]',
    ],
    [
      'nested data for rank 1',
      tensor('FP32', [1], [[1]]),
      'element 0 is an array; data must be flat, or nested exactly like shape [1]',
    ],
    [
      'nested: wrong outer length',
      tensor('FP32', [2, 3], [[1, 2, 3]]),
      'inputs[0] ("x"): data has 1 elements but shape[0] is 2 (shape [2,3])',
    ],
    [
      'nested: wrong inner length',
      tensor(
        'FP32',
        [2, 3],
        [
          [1, 2, 3],
          [4, 5],
        ],
      ),
      'data[1] has 2 elements but shape[1] is 3 (shape [2,3])',
    ],
    ['nested: too deep', tensor('FP32', [1, 2], [[1, [2]]]), 'data[0][1] is nested deeper than shape [1,2]'],
    [
      'nested: mixed',
      tensor('FP32', [2, 1], [[1], 2]),
      'data[1] must be an array of 1 elements (shape[1] of [2,1]), got 2',
    ],
    [
      'nested: element error uses the flat index',
      tensor(
        'UINT8',
        [2, 2],
        [
          [1, 2],
          [3, -4],
        ],
      ),
      'element 3 is -4, out of range for UINT8',
    ],
  ];
  for (const [what, input, message] of BAD_DATA) {
    test(`refuses ${what}`, () => assertInvalid(() => decodeJsonTensorData(input, 0), message));
  }

  test('a request with binary_data_size needs the header-length header', () => {
    assertInvalid(
      () =>
        decodeJsonRequest(
          '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}',
        ),
      'inputs[0] ("x") has parameters.binary_data_size but the request has no Inference-Header-Content-Length header',
    );
  });
});

describe('encodeJsonResponse', () => {
  test('writes the header fields the protocol defines, in order, and valid JSON', () => {
    const text = encodeJsonResponse({
      model_name: 'm"1',
      model_version: '2',
      id: 'r',
      parameters: { sequence_end: true },
      outputs: [
        { name: 'y', datatype: 'FP32', shape: [1, 2], data: new Float32Array([1.5, -Infinity]), parameters: { k: 1 } },
        { name: 'b', datatype: 'BOOL', shape: [0], data: new Uint8Array(0) },
      ],
    });
    assert.equal(
      text,
      '{"model_name":"m\\"1","model_version":"2","id":"r","parameters":{"sequence_end":true},"outputs":[' +
        '{"name":"y","datatype":"FP32","shape":[1,2],"parameters":{"k":1},"data":[1.5,"-Infinity"]},' +
        '{"name":"b","datatype":"BOOL","shape":[0],"data":[]}]}',
    );
    JSON.parse(text);
  });

  test('refuses storage that does not match the datatype or the shape (internal errors)', () => {
    assert.throws(
      () =>
        encodeJsonResponse({
          model_name: 'm',
          outputs: [{ name: 'y', datatype: 'FP16', shape: [1], data: new Float32Array(1) }],
        }),
      (error: ServeError) =>
        error.code === 'INTERNAL' && error.message === 'outputs[0] ("y"): Float32Array storage is not FP16 data',
    );
    assert.throws(
      () =>
        encodeJsonResponse({
          model_name: 'm',
          outputs: [{ name: 'y', datatype: 'FP32', shape: [2, 2], data: new Float32Array(3) }],
        }),
      (error: ServeError) =>
        error.code === 'INTERNAL' &&
        error.message === 'outputs[0] ("y"): storage holds 3 elements but shape [2,2] needs 4',
    );
  });

  test('large outputs (printed in chunks) round-trip exactly, special floats included', () => {
    const length = 3 * 128 * 128; // several print chunks
    const floats = new Float32Array(length);
    const ints = new Int32Array(length);
    for (let index = 0; index < length; index++) {
      floats[index] = Math.sin(index) * 1e3;
      ints[index] = (index * 2654435761) | 0;
    }
    const specials = floats.slice();
    specials[30_000] = NaN;
    specials[35_000] = -0;
    specials[length - 1] = Infinity;
    const outputs = [
      { name: 'floats', datatype: 'FP32' as const, shape: [3, 128, 128], data: floats },
      { name: 'specials', datatype: 'FP32' as const, shape: [length], data: specials },
      { name: 'ints', datatype: 'INT32' as const, shape: [length], data: ints },
      {
        name: 'bools',
        datatype: 'BOOL' as const,
        shape: [20_000],
        data: Uint8Array.from(ints.subarray(0, 20_000), (i) => i & 1),
      },
    ];
    const text = encodeJsonResponse({ model_name: 'm', outputs });
    decodeJsonResponse(text).outputs.forEach((output, index) => assertSameBytes(output.data, outputs[index].data));
    for (const printed of [',"NaN",', ',-0,', ',"Infinity"]}']) {
      assert.ok(text.includes(printed), `the JSON lacks ${printed}`);
    }
  });
});

describe('encodeJsonRequest', () => {
  test('every datatype survives client JSON → server decode', () => {
    const inputs = (Object.keys(SAMPLES) as Datatype[]).map((datatype) => ({
      name: `in_${datatype}`,
      datatype,
      shape: [4],
      data: SAMPLES[datatype].decoded,
    }));
    const text = encodeJsonRequest({
      id: 'a',
      parameters: { p: 1 },
      inputs,
      outputs: [{ name: 'o', parameters: { binary_data: true } }],
    });
    const decoded = decodeJsonRequest(text);
    assert.deepEqual(decoded.inputs, inputs);
    assert.equal(decoded.header.id, 'a');
    assert.deepEqual(decoded.header.outputs, [{ name: 'o', parameters: { binary_data: true } }]);
    for (const datatype of Object.keys(DATATYPES)) {
      assert.ok(text.includes(`"datatype":"${datatype}"`), `no ${datatype} input`);
    }
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseNpy } from '../../src/cli/npy.js';

// Written by numpy 2.4 (numpy.lib.format.write_array); see the file names for dtype and shape.
const fixture = (name: string) => parseNpy(readFileSync(new URL(`../fixtures/npy/${name}`, import.meta.url)), name);

describe('parseNpy on files numpy wrote', () => {
  test('reads every supported layout exactly', () => {
    assert.deepEqual(fixture('fp32-2x3.npy'), {
      datatype: 'FP32',
      shape: [2, 3],
      data: new Float32Array([1.5, -2, 3.25, 0, 1e-8, -0]),
    });
    assert.deepEqual(fixture('int64-3.npy'), {
      datatype: 'INT64',
      shape: [3],
      data: new BigInt64Array([2n ** 62n, -(2n ** 63n), 7n]),
    });
    assert.deepEqual(fixture('bool-2x2.npy'), { datatype: 'BOOL', shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) });
    assert.deepEqual(fixture('fp16-2.npy'), { datatype: 'FP16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) });
    assert.deepEqual(fixture('uint8-v2-1x4.npy'), {
      datatype: 'UINT8',
      shape: [1, 4],
      data: new Uint8Array([0, 1, 128, 255]),
    });
    assert.deepEqual(fixture('scalar.npy'), { datatype: 'FP64', shape: [], data: new Float64Array([3]) });
  });

  test('refuses what it cannot read, saying what to do', () => {
    assert.throws(() => fixture('fortran-2x2.npy'), {
      message: 'fortran-2x2.npy is in Fortran order; save it in C order (numpy.ascontiguousarray) first',
    });
    assert.throws(() => fixture('big-endian-2.npy'), {
      message: "big-endian-2.npy is big-endian (>f4); save it little-endian (array.astype('<f4'))",
    });
    assert.throws(() => parseNpy(new TextEncoder().encode('{"shape": [1]}'), 'x.npy'), {
      message: 'x.npy is not a .npy file: it does not start with \\x93NUMPY',
    });
    const cut = readFileSync(new URL('../fixtures/npy/fp32-2x3.npy', import.meta.url)).subarray(0, 140);
    assert.throws(() => parseNpy(cut, 'cut.npy'), {
      message: 'cut.npy: shape (2, 3) of <f4 needs 24 data bytes, the file has 12',
    });
  });
});

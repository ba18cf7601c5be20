/** The arithmetic of quantization parameters, against values worked out by hand (onnxruntime.quantization's conventions). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { roundHalfEven, uint8Params } from '../../src/quantize/qdq.js';

describe('uint8Params', () => {
  it('maps a range that spans 0 onto 0..255 with 0 exact', () => {
    const { scale, zeroPoint } = uint8Params({ min: -1, max: 3 });
    assert.equal(scale, Math.fround(4 / 255));
    assert.equal(zeroPoint, 64); // round(1 / (4/255)) = round(63.75)
    // The ends of the range land on the ends of uint8.
    assert.equal(roundHalfEven(-1 / scale) + zeroPoint, 0);
    assert.equal(roundHalfEven(3 / scale) + zeroPoint, 255);
  });

  it('widens an all-positive range down to 0 (Relu outputs: zero point 0)', () => {
    assert.deepEqual(uint8Params({ min: 0.5, max: 2.55 }), { scale: Math.fround(2.55 / 255), zeroPoint: 0 });
  });

  it('widens an all-negative range up to 0 (zero point 255)', () => {
    assert.deepEqual(uint8Params({ min: -5.1, max: -1 }), { scale: Math.fround(5.1 / 255), zeroPoint: 255 });
  });

  it('gives scale 1 to a tensor that is always 0, rather than dividing by zero', () => {
    assert.deepEqual(uint8Params({ min: 0, max: 0 }), { scale: 1, zeroPoint: 0 });
  });
});

describe('roundHalfEven', () => {
  it('rounds halves to the even neighbour, as numpy.rint does, and the rest to the nearest', () => {
    assert.deepEqual(
      [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1.4, 1.6, -1.6].map(roundHalfEven),
      [0, 2, 2, 0, -2, -2, 1, 2, -2],
    );
  });
});

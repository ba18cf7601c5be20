/**
 * FP32 and FP16 values print as the shortest decimal that reads back as the same float32
 * (src/protocol/shortest-float32.ts). Over a large random set and the edge cases, every printed value
 * must read back (`Math.fround(Number(text))`) as the identical float32, be no longer than the float64
 * widening's print, and have no shorter decimal that also reads back (checked against decimals built
 * from `toExponential`'s correctly rounded digits, independent of the code under test).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJsonTensorData } from '../../src/protocol/json-decode.js';
import { encodeJsonTensorData } from '../../src/protocol/json-encode.js';
import { float16BitsOf, numberOfFloat16Bits } from '../../src/protocol/datatypes.js';
import { shortestFloat32 } from '../../src/protocol/shortest-float32.js';

/** A fixed-seed generator (xorshift32), so that a failure names a value that can be replayed. */
function randomBits(count: number, seed: number): Uint32Array {
  const bits = new Uint32Array(count);
  let state = seed;
  for (let index = 0; index < count; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bits[index] = state >>> 0;
  }
  return bits;
}

/** Float32 values of every kind: random bit patterns, model-like outputs, and the edge cases. */
function testValues(): Float32Array {
  const bits = randomBits(200_000, 0x9e3779b9);
  const anyPattern = new Float32Array(bits.buffer.slice(0));
  const unit = Float32Array.from(bits.subarray(0, 100_000), (b) => b / 2 ** 32);
  const probabilities = Float32Array.from(bits.subarray(100_000), (b) => Math.exp((-40 * b) / 2 ** 32));
  const edges: number[] = [0.1, 0.2, 0.3, 1 / 3, 2 / 3, 0.5, 1, 3, 100, 123456789, 16777215, 16777216, 16777218];
  for (let exponent = -149; exponent <= 127; exponent++) {
    const power = 2 ** exponent;
    edges.push(power, Math.fround(power * (1 - 2 ** -24)), Math.fround(power * (1 + 2 ** -23)), power * 1.5);
  }
  for (let exponent = -45; exponent <= 38; exponent++) {
    const power = Number(`1e${exponent}`);
    edges.push(power, Math.fround(power) * (1 - 2 ** -23), power * 9.999999, power * 1.0000001);
  }
  // Subnormals: the smallest ones, the largest one, and some between.
  for (let count = 1; count < 40; count++) edges.push(count * 2 ** -149);
  edges.push((2 ** 23 - 1) * 2 ** -149, 3.4028234663852886e38, 1.1754942e-38, 1.17549435e-38, 5e-324, 1e39);
  const all = new Float32Array(anyPattern.length + unit.length + probabilities.length + edges.length * 2);
  all.set(anyPattern);
  all.set(unit, anyPattern.length);
  all.set(probabilities, anyPattern.length + unit.length);
  const at = anyPattern.length + unit.length + probabilities.length;
  all.set(edges, at);
  all.set(
    edges.map((value) => -value),
    at + edges.length,
  );
  return all;
}

const values = testValues();

function significantDigits(text: string): number {
  const mantissa = text.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '');
  return mantissa.replace(/0+$/, '').length || 1;
}

/** True when some decimal of `digits` significant digits reads back as the float32 `value`. */
function someDecimalOfDigitsReadsBack(value: number, digits: number): boolean {
  const [mantissa, exponent] = Math.abs(value)
    .toExponential(digits - 1)
    .split('e');
  const nearest = BigInt(mantissa.replace('.', ''));
  const scale = Number(exponent) - (digits - 1);
  for (const candidate of [nearest - 1n, nearest, nearest + 1n]) {
    if (candidate > 0n && Math.fround(Number(`${candidate}e${scale}`)) === Math.abs(value)) return true;
  }
  return false;
}

describe('shortestFloat32', () => {
  it('every value reads back as the identical float32, no longer than its float64 print', () => {
    let finite = 0;
    for (const value of values) {
      if (!Number.isFinite(value) || value === 0) continue;
      finite++;
      const text = String(shortestFloat32(value));
      assert.ok(Object.is(Math.fround(Number(text)), value), `${value} printed as ${text} reads back differently`);
      assert.ok(text.length <= String(value).length, `${value} printed as ${text}, longer than before`);
    }
    assert.ok(finite > 390_000, `only ${finite} finite values were checked`);
  });

  it('integers below 10^21 print as themselves: every other decimal that reads back prints as long or longer', () => {
    for (const value of values) {
      if (Number.isInteger(value) && Math.abs(value) < 1e21) assert.equal(shortestFloat32(value), value);
    }
  });

  it('other values: no decimal with fewer significant digits reads back (a sample of 40,000)', () => {
    const printedInFull = (value: number) => Number.isInteger(value) && Math.abs(value) < 1e21;
    for (let index = 0; index < values.length; index += Math.ceil(values.length / 40_000)) {
      const value = values[index];
      if (!Number.isFinite(value) || value === 0 || printedInFull(value)) continue;
      const text = String(shortestFloat32(value));
      const digits = significantDigits(text);
      for (let fewer = 1; fewer < digits; fewer++) {
        assert.ok(!someDecimalOfDigitsReadsBack(value, fewer), `${value} printed as ${text}, but ${fewer} digits do`);
      }
    }
    for (const value of values.slice(-2000)) {
      if (!Number.isFinite(value) || value === 0 || printedInFull(value)) continue;
      const text = String(shortestFloat32(value));
      const digits = significantDigits(text);
      if (digits > 1) assert.ok(!someDecimalOfDigitsReadsBack(value, digits - 1), `${value}: ${text}`);
    }
  });

  it('known values', () => {
    const cases: Array<[number, string]> = [
      [Math.fround(0.1), '0.1'],
      [Math.fround(1 / 3), '0.33333334'],
      [Math.fround(3.4e38), '3.4e+38'],
      [2 ** -149, '1e-45'],
      [2 ** -126, '1.1754944e-38'],
      [Math.fround(1e-7), '1e-7'],
      [16777216, '16777216'],
      // Integers below 10^21 print as themselves: no other decimal reading back prints shorter.
      [Math.fround(123456789), '123456792'],
      [Math.fround(1e11), '99999997952'],
      [Math.fround(1e21), '1e+21'],
      [-Math.fround(2.5e-10), '-2.5e-10'],
    ];
    for (const [value, text] of cases) assert.equal(String(shortestFloat32(value)), text, String(value));
    assert.ok(Object.is(shortestFloat32(-0), -0));
    assert.ok(Number.isNaN(shortestFloat32(NaN)));
    assert.equal(shortestFloat32(-Infinity), -Infinity);
  });
});

/** What the server's own JSON decoder reads from `text`, a flat array of `count` elements. */
function decode(datatype: 'FP32' | 'FP16', text: string, count: number): Float32Array | Uint16Array {
  return decodeJsonTensorData({ name: 'x', datatype, shape: [count], data: JSON.parse(text) as unknown[] }).data as
    Float32Array | Uint16Array;
}

describe('JSON printing of FP32 and FP16 data', () => {
  it('FP32: every element reads back identically, NaN, infinities and -0 as before, no longer in total', () => {
    const data = values.slice();
    data[5] = NaN;
    data[6] = -0;
    data[7] = Infinity;
    const text = encodeJsonTensorData('FP32', data);
    const decoded = decode('FP32', text, data.length) as Float32Array;
    for (let index = 0; index < data.length; index++) {
      assert.ok(
        Object.is(decoded[index], data[index]),
        `element ${index}: ${data[index]} came back as ${decoded[index]}`,
      );
    }
    const widened = `[${Array.from(data, (value) => (Number.isFinite(value) ? String(value) : '"NaN"')).join(',')}]`;
    assert.ok(text.length < widened.length * 0.7, `${text.length} characters against ${widened.length} before`);
    assert.match(text, /^\[[^\]]*,"NaN",-0,"Infinity",/);
    // Each element is written as Number.prototype.toString writes the float64 of its decimal.
    const elements = text.slice(1, -1).split(',');
    assert.equal(elements.length, data.length);
    for (let index = 0; index < data.length; index++) {
      const value = data[index];
      const expected = Number.isNaN(value)
        ? '"NaN"'
        : !Number.isFinite(value)
          ? JSON.stringify(String(value))
          : Object.is(value, -0)
            ? '-0'
            : String(shortestFloat32(value));
      assert.equal(elements[index], expected, `element ${index} (${value})`);
    }
  });

  it('FP16: every one of the 65,536 bit patterns prints as its shortest float32 decimal and reads back', () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, index) => index);
    const text = encodeJsonTensorData('FP16', bits);
    const printed = JSON.parse(text) as Array<number | string>;
    const decoded = decode('FP16', text, bits.length) as Uint16Array;
    for (let index = 0; index < bits.length; index++) {
      const value = numberOfFloat16Bits(index);
      if (Number.isNaN(value)) {
        assert.equal(printed[index], 'NaN');
        continue;
      }
      assert.equal(
        decoded[index],
        index,
        `FP16 bits ${index.toString(16)} came back as ${decoded[index].toString(16)}`,
      );
      assert.equal(float16BitsOf(Math.fround(Number(printed[index]))), index);
      if (Number.isFinite(value)) assert.equal(printed[index], shortestFloat32(value));
    }
    assert.ok(text.includes(',0.099975586,'), 'FP16 0.1 (0.0999755859375) prints as its float32 decimal');
  });
});

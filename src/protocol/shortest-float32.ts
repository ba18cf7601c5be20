/**
 * Float32 values as the shortest decimal that reads back as the same float32. A float32 widened to a
 * float64 prints with up to 17 digits (0.1f is 0.10000000149011612); a float32 reader needs at most
 * 9, often 7 or 8. Integers below 10^21 print as themselves (in full, as JSON prints them, no other
 * decimal that reads back is shorter there).
 *
 * A float32 `a` stands for every real number within half its ulp (its rounding interval). A decimal
 * grid of spacing 10^q no wider than that ulp always has a point in the interval; the nearest point to
 * `a` is tried first, then coarser grids while one still reads back. Each candidate is checked by
 * reading it back as JavaScript does (`Math.fround(Number(text))`: the float64 nearest the decimal,
 * then the float32 nearest that), and a decimal whose float64 falls exactly halfway between two
 * float32s is refused, so that a reader rounding the decimal straight to float32 gets the same value.
 * What is printed always reads back, whatever the arithmetic around it did; were no candidate to read
 * back (never seen), the float64 widening is printed.
 *
 * The digits are written as ASCII bytes a chunk at a time and decoded to a string once per chunk:
 * faster than JSON.stringify over the float64s (0.6–0.8× its time on the recognizer's answer,
 * bench/RESULTS.md), which has to search each float64's own shortest digits.
 */

/** 10^k for k = 0..22: the powers of ten a float64 holds exactly (parsed, so correctly rounded). */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
const LARGEST_EXACT_POWER = EXACT_POWERS_OF_TEN.length - 1;

/**
 * By a float32's biased exponent (its bits 23–30): the largest q with 10^q ≤ its ulp, the finest
 * decimal grid worth trying. Subnormals (exponent 0) have the ulp of exponent 1.
 */
const FINEST_GRID = Int32Array.from({ length: 255 }, (_, biased) => {
  const ulp = 2 ** (Math.max(biased, 1) - 150);
  let q = Math.floor(Math.log10(ulp));
  while (Number(`1e${q + 1}`) <= ulp) q++;
  while (Number(`1e${q}`) > ulp) q--;
  return q;
});

/** The decimal exponents a grid can have: 10^-46 (below the smallest float32's) up to 10^40. */
const SMALLEST_EXPONENT = -46;
const LARGEST_EXPONENT = 40;

/**
 * 10^q beyond the exact powers as a sum of two float64s, `high` = 10^q rounded and `low` = the rest
 * rounded, good to ~2^-104: 10^q = 2^q·5^q, and 5^q needs at most 107 bits here. `highUpper` and
 * `highLower` split `high` into halves of at most 26 and 27 bits for an exact product (Dekker).
 */
const POWER_HIGH = new Float64Array(LARGEST_EXPONENT - SMALLEST_EXPONENT + 1);
const POWER_LOW = new Float64Array(POWER_HIGH.length);
const POWER_HIGH_UPPER = new Float64Array(POWER_HIGH.length);
const POWER_HIGH_LOWER = new Float64Array(POWER_HIGH.length);
for (let q = SMALLEST_EXPONENT; q <= LARGEST_EXPONENT; q++) {
  const high = Number(`1e${q}`);
  // high = mantissa·2^exponent exactly; the rest, 10^q − high, from exact integers.
  const exponent = Math.floor(Math.log2(high)) - 52;
  const mantissa = BigInt(high / 2 ** exponent);
  const ten = 10n ** BigInt(Math.abs(q));
  const two = 2n ** BigInt(Math.abs(exponent));
  // 10^q − m·2^e over a common denominator, as numerator/denominator BigInts.
  const [numerator, denominator] =
    q >= 0
      ? exponent >= 0
        ? [ten - mantissa * two, 1n]
        : [ten * two - mantissa, two]
      : exponent >= 0
        ? [1n - mantissa * two * ten, ten]
        : [two - mantissa * ten, ten * two];
  const index = q - SMALLEST_EXPONENT;
  POWER_HIGH[index] = high;
  POWER_LOW[index] = Number(numerator) / Number(denominator);
  const upper = 134_217_729 * high - (134_217_729 * high - high);
  POWER_HIGH_UPPER[index] = upper;
  POWER_HIGH_LOWER[index] = high - upper;
}

/**
 * The float64 nearest m·10^q (m an integer below 2^31), exactly rounded. With both m and 10^|q| exact
 * float64s one division or multiplication rounds once. Beyond 10^22 (floats below ~1e-15 or above
 * ~1e29) the product of m with the two-part power is formed exactly but for ~2^-100 and rounded
 * once: a decimal of at most 10 digits is never that close to the midpoint between two float64s.
 */
function decimalValue(m: number, q: number): number {
  if (q <= 0 && q >= -LARGEST_EXACT_POWER) return m / EXACT_POWERS_OF_TEN[-q];
  if (q > 0 && q <= LARGEST_EXACT_POWER) return m * EXACT_POWERS_OF_TEN[q];
  return q < SMALLEST_EXPONENT || q > LARGEST_EXPONENT ? Number(`${m}e${q}`) : productWithTwoPartPower(m, q);
}

/** m·10^q rounded once, 10^q from the two-part table (kept apart so that decimalValue stays small). */
function productWithTwoPartPower(m: number, q: number): number {
  const index = q - SMALLEST_EXPONENT;
  const high = POWER_HIGH[index];
  const highUpper = POWER_HIGH_UPPER[index];
  const highLower = POWER_HIGH_LOWER[index];
  // m splits exactly into halves of at most 17 and 14 bits: every partial product below is exact.
  const mLower = m % 16_384;
  const mUpper = m - mLower;
  const product = m * high;
  const productError = mUpper * highUpper - product + mUpper * highLower + mLower * highUpper + mLower * highLower;
  return product + (productError + m * POWER_LOW[index]);
}

/** `a` / 10^q, rounded or not: only used to pick which grid points to try. */
function scaledTo(a: number, q: number): number {
  if (q <= 0 && q >= -LARGEST_EXACT_POWER) return a * EXACT_POWERS_OF_TEN[-q];
  if (q >= SMALLEST_EXPONENT && q <= LARGEST_EXPONENT) return a / POWER_HIGH[q - SMALLEST_EXPONENT];
  return a / 10 ** q;
}

/** The decimal found by findShortest: foundDigits·10^foundExponent. */
let foundDigits = 0;
let foundExponent = 0;

/**
 * True when m·10^q reads back as `a`, and not by a tie; then it becomes the found decimal. A tie: its
 * float64 lies exactly halfway between `a` and the next float32, where 2·value − a is that float32
 * (exact arithmetic here, the two being that close) and Math.fround picks `a` only as the even one.
 */
function takeIfReadsBack(m: number, q: number, a: number): boolean {
  const value = decimalValue(m, q);
  if (Math.fround(value) !== a) return false;
  const mirrored = 2 * value - a;
  if (value !== a && Math.fround(mirrored) === mirrored) return false;
  foundDigits = m;
  foundExponent = q;
  return true;
}

/**
 * A point of the grid of spacing 10^q that reads back as the float32 `a` (positive): the nearest to
 * `a`, or else its neighbour on the other side (a power of two's interval is narrower below than
 * above, so the nearest point can miss where the next one hits).
 */
function gridPointReadsBack(a: number, q: number): boolean {
  const scaled = scaledTo(a, q);
  const nearest = Math.round(scaled);
  if (takeIfReadsBack(nearest, q, a)) return true;
  const other = nearest > scaled ? nearest - 1 : nearest + 1;
  return other > 0 && takeIfReadsBack(other, q, a);
}

/**
 * For a positive finite float32 `a` with biased exponent `biased`: finds the shortest decimal reading
 * back as `a` (foundDigits, foundExponent); false if none was found.
 */
function findShortest(a: number, biased: number): boolean {
  let q = FINEST_GRID[biased];
  // Only a power of two's asymmetric interval can miss the finest grid; one digit more always hits.
  if (!gridPointReadsBack(a, q) && !gridPointReadsBack(a, --q)) return false;
  let digits = foundDigits;
  let exponent = foundExponent;
  while (gridPointReadsBack(a, ++q)) {
    digits = foundDigits;
    exponent = foundExponent;
  }
  foundDigits = digits;
  foundExponent = exponent;
  return true;
}

/** Below 10^21 JSON prints a number in full, so an integer float32 there prints shortest as itself. */
const FULL_PRINT_LIMIT = 1e21;

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/**
 * The float64 whose shortest print is the shortest decimal that reads back as the float32 `value`
 * (the float64 nearest that decimal). `value` must be a float32 value (a Float32Array element or
 * `Math.fround`'s result); 0, -0, NaN and ±Infinity come back as they are.
 */
export function shortestFloat32(value: number): number {
  scratchFloat[0] = value;
  const biased = (scratchBits[0] >>> 23) & 0xff;
  const a = Math.abs(value);
  if (value === 0 || biased === 0xff || (a < FULL_PRINT_LIMIT && Number.isInteger(a))) return value;
  if (!findShortest(a, biased)) return value;
  const decimal = decimalValue(foundDigits, foundExponent);
  return value < 0 ? -decimal : decimal;
}

/** The most bytes one element takes: "-0.000000123456789" and "\"-Infinity\"" fit, and so does a 22-byte integer. */
const MOST_BYTES_PER_ELEMENT = 24;
/** Elements per chunk: the scratch bytes stay at ~400 KB however large the tensor. */
const CHUNK_ELEMENTS = 16_384;
const chunkBytes = new Uint8Array(CHUNK_ELEMENTS * (MOST_BYTES_PER_ELEMENT + 1));
/** The decimal digits of a number, last digit first. */
const digitBytes = new Uint8Array(10);
// The bytes are ASCII, which UTF-8 decodes as Latin-1 would; TextDecoder, not Buffer: browser-safe.
const ASCII = new TextDecoder('utf-8');
const encodeAscii = (text: string) => Array.from(text, (character) => character.charCodeAt(0));
const NAN_BYTES = encodeAscii('"NaN"');
const INFINITY_BYTES = encodeAscii('"Infinity"');
const MINUS_INFINITY_BYTES = encodeAscii('"-Infinity"');
const ZERO = 0x30;

function writeBytes(bytes: Uint8Array, at: number, text: readonly number[]): number {
  for (let index = 0; index < text.length; index++) bytes[at + index] = text[index];
  return at + text.length;
}

/** Writes String(value) (for the rare values the fast paths leave). */
function writeText(bytes: Uint8Array, at: number, value: number): number {
  const text = String(value);
  for (let index = 0; index < text.length; index++) bytes[at + index] = text.charCodeAt(index);
  return at + text.length;
}

/** Puts the digits of `m` (a positive integer below 2^31) in digitBytes, last first; returns how many. */
function splitDigits(m: number): number {
  let count = 0;
  do {
    digitBytes[count++] = ZERO + (m % 10);
    m = (m / 10) | 0;
  } while (m > 0);
  return count;
}

/**
 * Writes m·10^q as Number.prototype.toString writes it (ECMA-262 Number::toString): in full from 10^-6
 * up to 10^21, with an exponent outside; m must have no trailing zeros unless q is 0.
 */
function writeDecimal(bytes: Uint8Array, at: number, m: number, q: number): number {
  const count = splitDigits(m);
  const point = count + q; // the value is 0.d1d2…dcount × 10^point
  let next = at;
  if (q >= 0 && point <= 21) {
    for (let index = count - 1; index >= 0; index--) bytes[next++] = digitBytes[index];
    for (let zeros = 0; zeros < q; zeros++) bytes[next++] = ZERO;
  } else if (point > 0 && point <= 21) {
    for (let index = count - 1; index >= count - point; index--) bytes[next++] = digitBytes[index];
    bytes[next++] = 0x2e; // .
    for (let index = count - point - 1; index >= 0; index--) bytes[next++] = digitBytes[index];
  } else if (point > -6 && point <= 0) {
    bytes[next++] = ZERO;
    bytes[next++] = 0x2e;
    for (let zeros = 0; zeros < -point; zeros++) bytes[next++] = ZERO;
    for (let index = count - 1; index >= 0; index--) bytes[next++] = digitBytes[index];
  } else {
    bytes[next++] = digitBytes[count - 1];
    if (count > 1) {
      bytes[next++] = 0x2e;
      for (let index = count - 2; index >= 0; index--) bytes[next++] = digitBytes[index];
    }
    bytes[next++] = 0x65; // e
    const exponent = point - 1;
    bytes[next++] = exponent < 0 ? 0x2d : 0x2b; // - or +
    const exponentDigits = splitDigits(Math.abs(exponent));
    for (let index = exponentDigits - 1; index >= 0; index--) bytes[next++] = digitBytes[index];
  }
  return next;
}

/** Writes one float32 element as JSON: shortest decimal, "NaN", "Infinity", "-Infinity" or -0. */
function writeElement(bytes: Uint8Array, at: number, value: number, bits: number): number {
  const biased = (bits >>> 23) & 0xff;
  if (biased === 0xff) {
    if (Number.isNaN(value)) return writeBytes(bytes, at, NAN_BYTES);
    return writeBytes(bytes, at, value > 0 ? INFINITY_BYTES : MINUS_INFINITY_BYTES);
  }
  let next = at;
  if (bits >>> 31) bytes[next++] = 0x2d;
  const a = Math.abs(value);
  if (a < 2_147_483_648 && Number.isInteger(a)) return writeDecimal(bytes, next, a, 0);
  if (a < FULL_PRINT_LIMIT && Number.isInteger(a)) return writeText(bytes, next, a);
  if (findShortest(a, biased)) return writeDecimal(bytes, next, foundDigits, foundExponent);
  return writeText(bytes, next, a);
}

/** JSON array text of float32 values, each as the shortest decimal that reads back as itself. */
export function float32sJson(values: Float32Array): string {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let text = '[';
  for (let start = 0; start < values.length; start += CHUNK_ELEMENTS) {
    const end = Math.min(start + CHUNK_ELEMENTS, values.length);
    let at = 0;
    for (let index = start; index < end; index++) {
      if (index > 0) chunkBytes[at++] = 0x2c; // ,
      at = writeElement(chunkBytes, at, values[index], bits[index]);
    }
    text += ASCII.decode(chunkBytes.subarray(0, at));
  }
  return `${text}]`;
}

/**
 * The shortest decimal that reads back as the same float32 (integers below 10^21 print exactly). A float32 widened to a float64 prints with
 * up to 17 digits (0.1f is 0.10000000149011612); what a float32 reader needs is at most 9, often 7 or 8.
 * The answer is given as the float64 nearest that short decimal, so that JSON.stringify (or String)
 * prints exactly the decimal: a decimal of at most 15 significant digits is what its nearest float64
 * prints as, since that float64's own shortest print can be no longer and, being a shorter decimal
 * reading back to the same float32, would have been found first.
 *
 * A float32 `a` is every real number within half its ulp (its rounding interval). A decimal grid of
 * spacing 10^q no wider than that ulp always has a point in the interval; the nearest point to `a` is
 * tried first, then coarser grids while one still reads back. Each candidate is checked by reading it
 * back (`Math.fround(decimal) === a`), so what is returned always reads back, whatever the arithmetic
 * around it did; when no candidate does (never seen), the float64 widening itself is returned.
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

/**
 * A point of the grid of spacing 10^q that reads back as the float32 `a` (positive): the nearest to
 * `a`, or else its neighbour on the other side (a power of two's interval is narrower below than
 * above, so the nearest point can miss where the next one hits). NaN when neither reads back.
 */
function gridPointReadingBack(a: number, q: number): number {
  const scaled = scaledTo(a, q);
  const nearest = Math.round(scaled);
  const value = decimalValue(nearest, q);
  if (Math.fround(value) === a) return value;
  const other = decimalValue(nearest > scaled ? nearest - 1 : nearest + 1, q);
  return Math.fround(other) === a ? other : NaN;
}

/**
 * Below 10^21 JSON prints a number in full, digit by digit: an integer float32 there (every float32
 * from 2^24 up is one) prints no longer as itself than as any other decimal that reads back, which
 * has as many integer digits or, rounded up to a power of ten, one more (99999997952 against
 * 100000000000).
 */
const FULL_PRINT_LIMIT = 1e21;

/**
 * For a positive finite float32 `a` with biased exponent `biased`: the float64 that prints as the
 * shortest decimal reading back as `a`.
 */
function shortestPositive(a: number, biased: number): number {
  if (a < FULL_PRINT_LIMIT && Number.isInteger(a)) return a;
  let q = FINEST_GRID[biased];
  let best = gridPointReadingBack(a, q);
  if (Number.isNaN(best)) {
    // Only a power of two's asymmetric interval can miss the finest grid; one digit more always hits.
    best = gridPointReadingBack(a, q - 1);
    if (Number.isNaN(best)) return a;
  }
  for (;;) {
    const coarser = gridPointReadingBack(a, ++q);
    if (Number.isNaN(coarser)) return best;
    best = coarser;
  }
}

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/**
 * The float64 whose shortest print is the shortest decimal that reads back (`Math.fround`) as the
 * float32 `value`. `value` must be a float32 value (a Float32Array element or `Math.fround`'s
 * result); 0, -0, NaN and ±Infinity come back as they are.
 */
export function shortestFloat32(value: number): number {
  scratchFloat[0] = value;
  const biased = (scratchBits[0] >>> 23) & 0xff;
  if (value === 0 || biased === 0xff) return value;
  return value < 0 ? -shortestPositive(-value, biased) : shortestPositive(value, biased);
}

/**
 * Writes shortestFloat32 of `values[start..end)` into `into[0..end-start)`: the loop the JSON encoder
 * runs, reading each element's exponent from the array's own bits.
 */
export function shortestFloat32Range(values: Float32Array, start: number, end: number, into: number[]): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let index = start; index < end; index++) {
    const value = values[index];
    const biased = (bits[index] >>> 23) & 0xff;
    into[index - start] =
      value === 0 || biased === 0xff
        ? value
        : value < 0
          ? -shortestPositive(-value, biased)
          : shortestPositive(value, biased);
  }
}

/**
 * Datatypes of the Open Inference Protocol and how they map onto onnxruntime-node's tensor types.
 * BF16 exists in the protocol but onnxruntime-node 1.30 has no bfloat16 tensor, so it is refused.
 */

export type Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

/** onnxruntime-node's tensor type names (Tensor.type). */
export type OrtType =
  | 'bool'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'uint64'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'float16'
  | 'float32'
  | 'float64'
  | 'string';

/** The element storage of a tensor: typed arrays for numbers (FP16 as raw bits), string[] for BYTES. */
export type TensorData =
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array
  | string[];

/** A tensor as it crosses the server: datatype, full shape (batch included) and row-major data. */
export interface Tensor {
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

/** A tensor with the name it has in a request or response (inputs[i], outputs[i]). */
export interface NamedTensor extends Tensor {
  name: string;
}

interface DatatypeInfo {
  ort: OrtType;
  /** Bytes per element in the binary encoding; 0 for BYTES (length-prefixed, variable). */
  byteSize: number;
  kind: 'bool' | 'int' | 'bigint' | 'float' | 'float16' | 'bytes';
  create: (length: number) => TensorData;
  /** Inclusive range for integer types (as bigint for 64-bit types). */
  min?: number | bigint;
  max?: number | bigint;
}

export const DATATYPES: Readonly<Record<Datatype, DatatypeInfo>> = {
  BOOL: { ort: 'bool', byteSize: 1, kind: 'bool', create: (n) => new Uint8Array(n) },
  UINT8: { ort: 'uint8', byteSize: 1, kind: 'int', create: (n) => new Uint8Array(n), min: 0, max: 0xff },
  UINT16: { ort: 'uint16', byteSize: 2, kind: 'int', create: (n) => new Uint16Array(n), min: 0, max: 0xffff },
  UINT32: { ort: 'uint32', byteSize: 4, kind: 'int', create: (n) => new Uint32Array(n), min: 0, max: 0xffffffff },
  UINT64: {
    ort: 'uint64',
    byteSize: 8,
    kind: 'bigint',
    create: (n) => new BigUint64Array(n),
    min: 0n,
    max: 0xffffffffffffffffn,
  },
  INT8: { ort: 'int8', byteSize: 1, kind: 'int', create: (n) => new Int8Array(n), min: -0x80, max: 0x7f },
  INT16: { ort: 'int16', byteSize: 2, kind: 'int', create: (n) => new Int16Array(n), min: -0x8000, max: 0x7fff },
  INT32: {
    ort: 'int32',
    byteSize: 4,
    kind: 'int',
    create: (n) => new Int32Array(n),
    min: -0x80000000,
    max: 0x7fffffff,
  },
  INT64: {
    ort: 'int64',
    byteSize: 8,
    kind: 'bigint',
    create: (n) => new BigInt64Array(n),
    min: -0x8000000000000000n,
    max: 0x7fffffffffffffffn,
  },
  FP16: { ort: 'float16', byteSize: 2, kind: 'float16', create: (n) => new Uint16Array(n) },
  FP32: { ort: 'float32', byteSize: 4, kind: 'float', create: (n) => new Float32Array(n) },
  FP64: { ort: 'float64', byteSize: 8, kind: 'float', create: (n) => new Float64Array(n) },
  BYTES: { ort: 'string', byteSize: 0, kind: 'bytes', create: (n) => new Array<string>(n).fill('') },
};

const BY_ORT_TYPE = new Map<string, Datatype>(
  (Object.keys(DATATYPES) as Datatype[]).map((datatype) => [DATATYPES[datatype].ort, datatype]),
);

export function isDatatype(value: unknown): value is Datatype {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(DATATYPES, value);
}

/** The protocol datatype of an onnxruntime tensor type, or undefined where the protocol has none. */
export function datatypeOfOrtType(ortType: string): Datatype | undefined {
  return BY_ORT_TYPE.get(ortType);
}

/** Number of elements a shape holds (1 for a scalar shape []). */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

const TWO_POW_24 = 2 ** 24;
const SMALLEST_NORMAL_FLOAT16 = 2 ** -14;
/** Halfway between 65504 (the largest half) and the next step, 65536: from here on it rounds to Infinity. */
const FLOAT16_OVERFLOW = 65520;

/** Rounds x ≥ 0 to an integer, ties to even (IEEE 754's default rounding). */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest > 0.5) return floor + 1;
  if (rest < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * IEEE 754 half-precision bits of a number, rounded to nearest even straight from float64 (going
 * through float32 first would round twice). Overflow gives ±Infinity, NaN gives the quiet NaN 0x7e00.
 */
export function float16BitsOf(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  if (magnitude >= FLOAT16_OVERFLOW) return sign | 0x7c00;
  if (magnitude < SMALLEST_NORMAL_FLOAT16) {
    // Subnormals count in steps of 2^-24; a round-up to 1024 lands exactly on the smallest normal's bits.
    return sign | roundHalfEven(magnitude * TWO_POW_24);
  }
  // Math.log2 may be off by one next to a power of two; the two checks pin the exponent exactly.
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent -= 1;
  else if (2 ** (exponent + 1) <= magnitude) exponent += 1;
  const fraction = roundHalfEven((magnitude / 2 ** exponent - 1) * 1024);
  // A fraction that rounds up to 1024 carries into the exponent, which is what the addition does.
  return sign | (((exponent + 15) << 10) + fraction);
}

/** The number that IEEE 754 half-precision bits stand for. */
export function numberOfFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

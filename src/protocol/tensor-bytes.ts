/**
 * A numeric tensor over little-endian bytes that may sit at an offset its typed array cannot start
 * at (a binary request's floats after a JSON header of odd length). Such a tensor keeps its bytes and
 * makes the aligned copy only when something reads `data`: a lone request copies once (the worker
 * needs the aligned array), a batched one is copied once, straight into the batch's buffer
 * (scheduler/tensor-batch.ts reads `pendingBytesOf`), and never into an aligned copy first.
 */
import type { Datatype, NamedTensor, TensorData } from './datatypes.js';

export type NumericData = Exclude<TensorData, string[]>;
export type NumericDatatype = Exclude<Datatype, 'BYTES'>;

interface NumericArrayConstructor {
  new (length: number): NumericData;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): NumericData;
  readonly BYTES_PER_ELEMENT: number;
}

const ARRAY_CONSTRUCTORS: Readonly<Record<NumericDatatype, NumericArrayConstructor>> = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP16: Uint16Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

// The bytes of tensors whose aligned copy nobody has asked for yet; an entry goes when `data` is read.
const pending = new WeakMap<NamedTensor, { bytes: Uint8Array; datatype: NumericDatatype }>();
// Where `data` lives once read or set (the accessor below replaces the plain field).
const materialized = new WeakMap<NamedTensor, TensorData>();

// One getter and setter shared by every such tensor: V8 keeps objects whose accessors are the same
// functions on one hidden class; a fresh closure per tensor would turn each into a dictionary object.
const DATA_ACCESSOR: PropertyDescriptor = {
  enumerable: true,
  configurable: true,
  get(this: NamedTensor): TensorData {
    let data = materialized.get(this);
    if (data === undefined) {
      const { bytes, datatype } = pending.get(this)!;
      data = numericArrayOver(bytes, datatype);
      materialized.set(this, data);
      pending.delete(this);
    }
    return data;
  },
  set(this: NamedTensor, value: TensorData) {
    materialized.set(this, value);
    pending.delete(this);
  },
};

function isAligned(bytes: Uint8Array, datatype: NumericDatatype): boolean {
  return bytes.byteOffset % ARRAY_CONSTRUCTORS[datatype].BYTES_PER_ELEMENT === 0;
}

/** The elements of `bytes` (a whole number of elements) as a typed array: a view when aligned, else a copy. */
export function numericArrayOver(bytes: Uint8Array, datatype: NumericDatatype): NumericData {
  const ArrayType = ARRAY_CONSTRUCTORS[datatype];
  const count = bytes.byteLength / ArrayType.BYTES_PER_ELEMENT;
  if (isAligned(bytes, datatype)) return new ArrayType(bytes.buffer, bytes.byteOffset, count);
  const copy = new ArrayType(count);
  new Uint8Array(copy.buffer, 0, bytes.byteLength).set(bytes);
  return copy;
}

/**
 * A tensor whose elements are `bytes`: `data` is a view when aligned; when not, `data` is an aligned
 * copy made on its first read (and kept), and until then `pendingBytesOf` gives the bytes themselves.
 * The caller must leave `bytes` unchanged while the tensor lives.
 */
export function tensorOverBytes(
  name: string,
  datatype: NumericDatatype,
  shape: number[],
  bytes: Uint8Array,
): NamedTensor {
  if (isAligned(bytes, datatype)) return { name, datatype, shape, data: numericArrayOver(bytes, datatype) };
  const tensor = { name, datatype, shape } as NamedTensor;
  pending.set(tensor, { bytes, datatype });
  // An own enumerable accessor, so spreading, cloning and deepEqual see `data` like a plain field.
  Object.defineProperty(tensor, 'data', DATA_ACCESSOR);
  return tensor;
}

/** The little-endian bytes of a tensor from tensorOverBytes whose aligned copy is not made yet. */
export function pendingBytesOf(tensor: NamedTensor): Uint8Array | undefined {
  return pending.get(tensor)?.bytes;
}

/**
 * Tensor data to JSON: responses (and, for clients, requests) as JSON text, with outputs that travel
 * as binary blobs named by binary_data_size. FP32 values print as the shortest decimal of their
 * float64 widening; non-finite floats as "NaN", "Infinity", "-Infinity"; 64-bit integers exactly.
 */
import {
  DATATYPES,
  elementCount,
  numberOfFloat16Bits,
  type Datatype,
  type NamedTensor,
  type TensorData,
} from './datatypes.js';
import { internal } from './errors.js';
import type { InferenceRequest, InferenceResponse, Parameters, WireTensor } from './json-codec.js';
import { tensorLabel } from './json-decode.js';
import { formatShape } from './shape.js';
import { float32sJson } from './shortest-float32.js';

/**
 * Throws an internal error unless `data` is the storage DATATYPES prescribes for the datatype and has
 * as many elements as the shape: what the server sends must never be silently misread.
 */
export function checkTensorData(tensor: NamedTensor, label: string): void {
  const expected = DATATYPES[tensor.datatype].create(0);
  if (Object.getPrototypeOf(tensor.data) !== Object.getPrototypeOf(expected)) {
    throw internal(`${label}: ${tensor.data.constructor.name} storage is not ${tensor.datatype} data`);
  }
  const count = elementCount(tensor.shape);
  if (tensor.data.length !== count) {
    throw internal(
      `${label}: storage holds ${tensor.data.length} elements but shape ${formatShape(tensor.shape)} needs ${count}`,
    );
  }
}

function nonFiniteJson(value: number): string {
  if (Number.isNaN(value)) return '"NaN"';
  return value > 0 ? '"Infinity"' : '"-Infinity"';
}

/** Storage of number elements that JSON.stringify can print (bigint arrays excluded). */
type NumberArray = Exclude<TensorData, string[] | BigInt64Array | BigUint64Array>;

/**
 * Elements per JSON.stringify call. V8 prints a plain array of numbers 1.5–2.5× faster than
 * TypedArray.prototype.join; chunking keeps the temporary plain array small.
 */
const JSON_CHUNK_LENGTH = 16384;

/**
 * JSON array text of `length` elements, printed by JSON.stringify a chunk at a time;
 * `chunkOf(start, end)` returns the elements in [start, end) as a plain array.
 */
function chunkedJson(length: number, chunkOf: (start: number, end: number) => unknown[]): string {
  if (length <= JSON_CHUNK_LENGTH) return JSON.stringify(chunkOf(0, length));
  let text = '[';
  for (let start = 0; start < length; start += JSON_CHUNK_LENGTH) {
    if (start > 0) text += ',';
    text += JSON.stringify(chunkOf(start, Math.min(start + JSON_CHUNK_LENGTH, length))).slice(1, -1);
  }
  return `${text}]`;
}

/**
 * One plain array reused for every chunk of numbers: filled by a loop it holds unboxed doubles, so
 * printing a tensor allocates no number objects (Array.from of a typed array boxes each element).
 */
const numberScratch: number[] = [];

/** JSON text of numbers that print as themselves (finite and not -0: JSON.stringify makes -0 "0"). */
function numbersJson(values: NumberArray): string {
  return chunkedJson(values.length, (start, end) => {
    const chunk = numberScratch;
    chunk.length = end - start;
    for (let index = start; index < end; index++) chunk[index - start] = values[index];
    return chunk;
  });
}

function printsAsItself(value: number): boolean {
  return Number.isFinite(value) && !Object.is(value, -0);
}

function floatsJson(values: Float64Array): string {
  let index = 0;
  while (index < values.length && printsAsItself(values[index])) index++;
  if (index === values.length) return numbersJson(values);
  // Rare: from the first special value on, print element by element.
  let text = numbersJson(values.subarray(0, index)).slice(0, -1);
  for (; index < values.length; index++) {
    const value = values[index];
    if (index > 0) text += ',';
    if (printsAsItself(value)) text += String(value);
    else if (Object.is(value, -0)) text += '-0';
    else text += nonFiniteJson(value);
  }
  return `${text}]`;
}

/** The JSON array text of a tensor's elements, flat and row-major. */
export function encodeJsonTensorData(datatype: Datatype, data: TensorData): string {
  switch (DATATYPES[datatype].kind) {
    case 'int':
      return numbersJson(data as NumberArray);
    case 'bigint':
      // BigInt64Array and BigUint64Array join to exact integer literals (no `n`); JSON.stringify refuses bigints.
      return `[${(data as BigInt64Array | BigUint64Array).join(',')}]`;
    case 'float':
      return data instanceof Float32Array ? float32sJson(data) : floatsJson(data as Float64Array);
    case 'float16': {
      const bits = data as Uint16Array;
      // Every float16 is a float32, so its shortest float32 decimal reads back as the same float16 too.
      const values = new Float32Array(bits.length);
      for (let index = 0; index < bits.length; index++) values[index] = numberOfFloat16Bits(bits[index]);
      return float32sJson(values);
    }
    case 'bool': {
      const bytes = data as Uint8Array;
      return chunkedJson(bytes.length, (start, end) => Array.from(bytes.subarray(start, end), (byte) => byte !== 0));
    }
    case 'bytes':
      return JSON.stringify(data);
  }
}

/** JSON of parameters plus binary_data_size (replacing any binary_data_size they already had). */
function parametersWithBinarySizeJson(parameters: Parameters | undefined, binaryDataSize: number): string {
  const rest =
    parameters === undefined
      ? '{}'
      : JSON.stringify(parameters, (key, value: unknown) => (key === 'binary_data_size' ? undefined : value));
  return rest === '{}'
    ? `{"binary_data_size":${binaryDataSize}}`
    : `${rest.slice(0, -1)},"binary_data_size":${binaryDataSize}}`;
}

/** One tensor's JSON object: with `data`, or, when it travels as a blob, with binary_data_size instead. */
function tensorJson(tensor: WireTensor, label: string, binaryDataSize: number | undefined): string {
  checkTensorData(tensor, label);
  const head = `{"name":${JSON.stringify(tensor.name)},"datatype":"${tensor.datatype}","shape":${JSON.stringify(tensor.shape)}`;
  if (binaryDataSize !== undefined) {
    return `${head},"parameters":${parametersWithBinarySizeJson(tensor.parameters, binaryDataSize)}}`;
  }
  const parameters = tensor.parameters === undefined ? '' : `,"parameters":${JSON.stringify(tensor.parameters)}`;
  return `${head}${parameters},"data":${encodeJsonTensorData(tensor.datatype, tensor.data)}}`;
}

function tensorListJson(
  tensors: readonly WireTensor[],
  list: 'inputs' | 'outputs',
  binaryDataSizes: readonly (number | undefined)[] | undefined,
): string {
  let text = '[';
  for (let index = 0; index < tensors.length; index++) {
    if (index > 0) text += ',';
    text += tensorJson(tensors[index], tensorLabel(list, index, tensors[index].name), binaryDataSizes?.[index]);
  }
  return `${text}]`;
}

/**
 * The JSON text of an inference response. `binaryDataSizes[i]`, when set, means output i travels as a
 * blob after the JSON (the binary extension): it gets parameters.binary_data_size and no data.
 */
export function encodeJsonResponse(
  response: InferenceResponse,
  binaryDataSizes?: readonly (number | undefined)[],
): string {
  let text = `{"model_name":${JSON.stringify(response.model_name)}`;
  if (response.model_version !== undefined) text += `,"model_version":${JSON.stringify(response.model_version)}`;
  if (response.id !== undefined) text += `,"id":${JSON.stringify(response.id)}`;
  if (response.parameters !== undefined) text += `,"parameters":${JSON.stringify(response.parameters)}`;
  return `${text},"outputs":${tensorListJson(response.outputs, 'outputs', binaryDataSizes)}}`;
}

/** Client side: the JSON text of an inference request; `binaryDataSizes` as for encodeJsonResponse. */
export function encodeJsonRequest(
  request: InferenceRequest,
  binaryDataSizes?: readonly (number | undefined)[],
): string {
  let text = '{';
  if (request.id !== undefined) text += `"id":${JSON.stringify(request.id)},`;
  if (request.parameters !== undefined) text += `"parameters":${JSON.stringify(request.parameters)},`;
  text += `"inputs":${tensorListJson(request.inputs, 'inputs', binaryDataSizes)}`;
  if (request.outputs !== undefined) text += `,"outputs":${JSON.stringify(request.outputs)}`;
  return `${text}}`;
}

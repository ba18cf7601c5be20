/**
 * The tensors a library caller hands in and gets back, shared by the in-process API and the client
 * so that code can move between them unchanged. Browser-safe: no Node-only imports.
 */

import { DATATYPES, elementCount, type Datatype, type NamedTensor, type Tensor, type TensorData } from './datatypes.js';
import { invalidArgument } from './errors.js';
import type { InferenceResponse, Parameters } from './json-codec.js';
import { formatShape } from './shape.js';

/**
 * One input tensor: row-major data and the full shape (batch included). `datatype` may be left out
 * where the storage says it (Float32Array → FP32, BigInt64Array → INT64, string[] → BYTES, …);
 * BOOL (Uint8Array of 0/1) and FP16 (Uint16Array of half-precision bits) must be named.
 */
export interface TensorInput {
  data: TensorData;
  shape: readonly number[];
  datatype?: Datatype;
}

/** Inputs by name, in the order the model lists them or any other. */
export type InferInputs = Readonly<Record<string, TensorInput>>;

/** An inference answer: outputs by name, in the order they were asked for (model order by default). */
export interface InferResult {
  modelName: string;
  modelVersion?: string;
  /** The request's `id`, echoed. */
  id?: string;
  parameters?: Parameters;
  outputs: Record<string, Tensor>;
}

/** Storage → datatype where the storage alone says it (Uint8Array → UINT8, not BOOL; Uint16Array → UINT16, not FP16). */
const DATATYPE_OF_STORAGE = new Map<unknown, Datatype>([
  [Float32Array.prototype, 'FP32'],
  [Float64Array.prototype, 'FP64'],
  [Int8Array.prototype, 'INT8'],
  [Int16Array.prototype, 'INT16'],
  [Int32Array.prototype, 'INT32'],
  [BigInt64Array.prototype, 'INT64'],
  [Uint8Array.prototype, 'UINT8'],
  [Uint16Array.prototype, 'UINT16'],
  [Uint32Array.prototype, 'UINT32'],
  [BigUint64Array.prototype, 'UINT64'],
  [Array.prototype, 'BYTES'],
]);

function storageName(data: unknown): string {
  if (Array.isArray(data)) return 'an array';
  if (typeof data === 'object' && data !== null) return data.constructor.name;
  return typeof data;
}

/**
 * The inputs as named tensors, checked: a known datatype, storage that suits it, a shape of
 * non-negative integers and as many elements as the shape needs. Throws INVALID_ARGUMENT naming the input.
 */
export function toNamedTensors(inputs: InferInputs): NamedTensor[] {
  if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) {
    throw invalidArgument(`inputs must be an object of {name: {data, shape}}, got ${storageName(inputs)}`);
  }
  return Object.entries(inputs).map(([name, input]) => {
    const label = `input ${JSON.stringify(name)}`;
    if (typeof input !== 'object' || input === null) {
      throw invalidArgument(`${label} must be {data, shape, datatype?}, got ${storageName(input)}`);
    }
    const { data, shape } = input;
    const prototype: unknown = typeof data === 'object' && data !== null ? Object.getPrototypeOf(data) : undefined;
    const datatype = input.datatype ?? DATATYPE_OF_STORAGE.get(prototype);
    if (datatype === undefined || !Object.prototype.hasOwnProperty.call(DATATYPES, datatype)) {
      throw invalidArgument(
        input.datatype === undefined
          ? `${label}: cannot tell the datatype of ${storageName(data)} data; pass a typed array or string[], or name the datatype`
          : `${label}: unknown datatype ${JSON.stringify(input.datatype)}; expected one of ${Object.keys(DATATYPES).join(', ')}`,
      );
    }
    const expected = DATATYPES[datatype].create(0);
    if (prototype !== Object.getPrototypeOf(expected)) {
      throw invalidArgument(`${label}: ${datatype} data must be a ${storageName(expected)}, got ${storageName(data)}`);
    }
    if (!Array.isArray(shape) || !shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
      throw invalidArgument(`${label}: shape must be an array of non-negative integers, got ${String(shape)}`);
    }
    const count = elementCount(shape);
    if (data.length !== count) {
      throw invalidArgument(
        `${label}: data has ${data.length} elements but shape ${formatShape(shape)} needs ${count}`,
      );
    }
    if (datatype === 'BYTES' && !(data as unknown[]).every((element) => typeof element === 'string')) {
      throw invalidArgument(`${label}: BYTES data must hold strings only`);
    }
    return { name, datatype, shape: [...shape], data };
  });
}

/** A protocol response (decoded) as an InferResult. */
export function toInferResult(
  response: InferenceResponse | { header: Omit<InferenceResponse, 'outputs'>; outputs: NamedTensor[] },
): InferResult {
  const header = 'header' in response ? response.header : response;
  const result: InferResult = { modelName: header.model_name, outputs: {} };
  if (header.model_version !== undefined) result.modelVersion = header.model_version;
  if (header.id !== undefined) result.id = header.id;
  if (header.parameters !== undefined) result.parameters = header.parameters;
  for (const output of response.outputs) {
    result.outputs[output.name] = { datatype: output.datatype, shape: output.shape, data: output.data };
  }
  return result;
}

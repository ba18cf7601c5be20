/**
 * Triton's binary tensor data extension (`binary_tensor_data`): a JSON header of
 * `Inference-Header-Content-Length` bytes, then one raw blob per binary tensor, in the order the
 * header lists them. Blobs are little-endian and unpadded; BOOL is one byte; a BYTES element is a
 * 4-byte little-endian length and that many UTF-8 bytes. With a header length of 0 ("raw mode") the
 * whole body is the bytes of the model's only input.
 *
 * Numeric blobs become typed-array views over the body where the offset is aligned for the element
 * size, and aligned copies where it is not. A view shares the body's memory: posting it to a worker
 * clones (or, in a transfer list, detaches) the body's whole ArrayBuffer, so callers copy first where
 * that matters.
 */

import { DATATYPES, elementCount, type Datatype, type NamedTensor, type TensorData } from './datatypes.js';
import { decodeBytesElement } from './bytes-elements.js';
import { internal, invalidArgument } from './errors.js';
import {
  describeJsonValue,
  parseInferenceRequest,
  parseInferenceResponse,
  type DecodedInferenceRequest,
  type DecodedInferenceResponse,
  type InferenceRequest,
  type InferenceRequestHeader,
  type InferenceResponse,
  type Parameters,
  type TensorHeader,
} from './json-codec.js';
import { binaryDataSizeOf, decodeJsonTensorData, tensorLabel } from './json-decode.js';
import { checkTensorData, encodeJsonRequest, encodeJsonResponse } from './json-encode.js';
import { formatShape } from './shape.js';
import { numericArrayOver, tensorOverBytes, type NumericData, type NumericDatatype } from './tensor-bytes.js';

// Typed arrays read and write in host byte order, and the wire is little-endian: views over blobs
// are only right on a little-endian host (x86-64 and arm64 as Node runs them). Checked once, here.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('onnx-serve needs a little-endian host: binary tensor blobs are little-endian');
}

/** The HTTP header giving the JSON part's length (lower-case, as node:http delivers header names). */
export const HEADER_LENGTH_HEADER = 'inference-header-content-length';

/** The body parts to write in order (no concatenation needed), and the two lengths HTTP needs. */
export interface EncodedBody {
  chunks: Uint8Array[];
  /** Value for Inference-Header-Content-Length. */
  headerLength: number;
  /** Value for Content-Length. */
  byteLength: number;
}

const LENGTH_PREFIX_BYTES = 4;

// Uint8Array, DataView and TextEncoder rather than Buffer: the client (onnx-serve/client) runs in
// browsers and imports this module. BYTES elements are decoded strictly (bytes-elements.ts).
const UTF8_ENCODER = new TextEncoder();

function dataViewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The validated value of Inference-Header-Content-Length, or undefined when the request has none
 * (a plain JSON request). 0 means raw mode.
 */
export function parseHeaderLength(value: string | string[] | undefined, bodyLength: number): number | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw invalidArgument('Inference-Header-Content-Length appears more than once');
  const trimmed = value.trim();
  const length = /^\d{1,15}$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isSafeInteger(length)) {
    throw invalidArgument(
      `Inference-Header-Content-Length must be a non-negative integer, got ${JSON.stringify(value)}`,
    );
  }
  if (length > bodyLength) {
    throw invalidArgument(`Inference-Header-Content-Length is ${length} but the body has only ${bodyLength} bytes`);
  }
  return length;
}

/**
 * The BYTES elements of a blob. With `expectedCount` the blob must hold exactly that many elements;
 * without it (raw mode, shape to be inferred) it holds as many as it holds.
 */
function decodeBytesElements(
  buffer: Uint8Array,
  start: number,
  size: number,
  expectedCount: number | undefined,
  label: string,
): string[] {
  const end = start + size;
  const view = dataViewOf(buffer);
  const elements: string[] = [];
  let position = start;
  while (position < end) {
    if (elements.length === expectedCount) {
      throw invalidArgument(
        `${label}: the BYTES blob has ${end - position} bytes left over after its ${expectedCount} elements`,
      );
    }
    const left = end - position;
    if (left < LENGTH_PREFIX_BYTES) {
      throw invalidArgument(
        `${label}: BYTES element ${elements.length} has a truncated length prefix (${left} of ${LENGTH_PREFIX_BYTES} bytes)`,
      );
    }
    const length = view.getUint32(position, true);
    position += LENGTH_PREFIX_BYTES;
    if (length > end - position) {
      throw invalidArgument(
        `${label}: BYTES element ${elements.length} declares ${length} bytes but only ${end - position} are left in its blob`,
      );
    }
    elements.push(decodeBytesElement(buffer.subarray(position, position + length), `${label}:`, elements.length));
    position += length;
  }
  if (expectedCount !== undefined && elements.length !== expectedCount) {
    throw invalidArgument(
      `${label}: the BYTES blob holds ${elements.length} elements but the shape needs ${expectedCount}`,
    );
  }
  return elements;
}

/**
 * Decodes the blob of a tensor listed with binary_data_size; throws invalidArgument naming it.
 * With `deferCopy` (a request's inputs) an unaligned numeric blob stays where it is until its
 * elements are read (tensor-bytes.ts), so that batching copies it once, into the batch.
 */
function decodeBlob(
  buffer: Uint8Array,
  offset: number,
  size: number,
  tensor: TensorHeader,
  label: string,
  deferCopy: boolean,
): NamedTensor {
  const left = buffer.length - offset;
  if (size > left) {
    throw invalidArgument(
      `${label}: parameters.binary_data_size is ${size} but only ${left} bytes of the body are left for it`,
    );
  }
  const blob = buffer.subarray(offset, offset + size);
  const sizeText = `parameters.binary_data_size is ${size}`;
  const { name, datatype, shape } = tensor;
  if (datatype === 'BYTES' || !deferCopy) {
    return { name, datatype, shape, data: decodeTensorBlob(blob, tensor, label, sizeText) };
  }
  checkNumericBlob(blob, { datatype, shape }, label, sizeText);
  return tensorOverBytes(name, datatype, shape, blob);
}

/**
 * The elements of one tensor from its whole blob: a slice of an HTTP body, or one gRPC
 * raw_input_contents entry. The blob must hold exactly what the shape needs; `sizeText` says in
 * messages where the blob's size came from (`parameters.binary_data_size is 12`, `it has 12 bytes`).
 */
export function decodeTensorBlob(
  blob: Uint8Array,
  tensor: { datatype: Datatype; shape: readonly number[] },
  label: string,
  sizeText: string,
): TensorData {
  if (tensor.datatype === 'BYTES') {
    const count = elementCount(tensor.shape);
    return decodeBytesElements(blob, 0, blob.length, count, `${label} shape ${formatShape(tensor.shape)}`);
  }
  checkNumericBlob(blob, { datatype: tensor.datatype, shape: tensor.shape }, label, sizeText);
  return numericArrayOver(blob, tensor.datatype);
}

/** A numeric blob holds exactly what the shape needs, and BOOL bytes are 0 or 1. */
function checkNumericBlob(
  blob: Uint8Array,
  tensor: { datatype: NumericDatatype; shape: readonly number[] },
  label: string,
  sizeText: string,
): void {
  const needed = elementCount(tensor.shape) * DATATYPES[tensor.datatype].byteSize;
  if (blob.length !== needed) {
    throw invalidArgument(
      `${label}: ${sizeText} but shape ${formatShape(tensor.shape)} of ${tensor.datatype} needs ${needed} bytes`,
    );
  }
  if (tensor.datatype === 'BOOL') checkBoolBytes(blob, label);
}

function checkBoolBytes(bytes: Uint8Array, label: string): void {
  for (let index = 0; index < bytes.length; index++) {
    if (bytes[index] > 1)
      throw invalidArgument(`${label}: BOOL element ${index} is byte ${bytes[index]}; BOOL bytes must be 0 or 1`);
  }
}

/**
 * Decodes the tensors of a header whose blobs follow it from `headerLength` on: binary ones from
 * their blobs, in listing order; the others from their JSON data. Every byte must be used.
 */
function decodeTensors(
  buffer: Uint8Array,
  headerLength: number,
  tensors: readonly TensorHeader[],
  list: 'inputs' | 'outputs',
): NamedTensor[] {
  // Inputs go on to a batch (where an unaligned blob is copied once, into it); outputs go to a caller.
  const deferCopy = list === 'inputs';
  let offset = headerLength;
  const decoded = tensors.map((tensor, index): NamedTensor => {
    const label = tensorLabel(list, index, tensor.name);
    const size = binaryDataSizeOf(tensor, label);
    if (size === undefined) return decodeJsonTensorData(tensor, index, list);
    if (tensor.data !== undefined)
      throw invalidArgument(`${label} has both data and parameters.binary_data_size; send one`);
    const decodedTensor = decodeBlob(buffer, offset, size, tensor, label, deferCopy);
    offset += size;
    return decodedTensor;
  });
  if (offset < buffer.length) {
    throw invalidArgument(
      `the body has ${buffer.length - offset} bytes after the last binary ${list === 'inputs' ? 'input' : 'output'} ` +
        `(the ${headerLength}-byte JSON header lists ${offset - headerLength} bytes of binary data)`,
    );
  }
  return decoded;
}

function checkHeaderLength(headerLength: number, bodyLength: number): void {
  if (!Number.isSafeInteger(headerLength) || headerLength <= 0) {
    throw internal(
      `binary decoding needs a positive header length, got ${headerLength}; raw bodies go through decodeRawBody`,
    );
  }
  if (headerLength > bodyLength) {
    throw invalidArgument(
      `Inference-Header-Content-Length is ${headerLength} but the body has only ${bodyLength} bytes`,
    );
  }
}

/** Decodes a request sent with Inference-Header-Content-Length > 0 (see parseHeaderLength). */
export function decodeBinaryRequest(buffer: Uint8Array, headerLength: number): DecodedInferenceRequest {
  checkHeaderLength(headerLength, buffer.length);
  const header = parseInferenceRequest(buffer.subarray(0, headerLength));
  return { header, inputs: decodeTensors(buffer, headerLength, header.inputs, 'inputs') };
}

/**
 * Raw mode (Inference-Header-Content-Length: 0): the body is the bytes of the model's only input,
 * described by `input` from the model's metadata. One dimension may be -1; it is inferred from the
 * body's length (the caller substitutes 1 for a batch dimension first if it wants batch 1).
 */
export function decodeRawBody(
  buffer: Uint8Array,
  input: { name: string; datatype: Datatype; shape: readonly number[] },
): NamedTensor {
  const label = `raw body for input ${JSON.stringify(input.name)} (${input.datatype} ${formatShape(input.shape)})`;
  const variable = input.shape.flatMap((dim, index) => (dim < 0 ? [index] : []));
  if (variable.length > 1) {
    throw invalidArgument(
      `${label}: a raw body can fill at most one variable dimension; send a JSON header with the shape`,
    );
  }
  const fixedCount = input.shape.reduce((product, dim) => (dim < 0 ? product : product * dim), 1);
  const shape = [...input.shape];
  // The count of elements the body holds, which must be a whole number of fixed-dimension slices.
  const fillShape = (count: number, unit: string): void => {
    if (variable.length === 0) {
      if (count !== fixedCount)
        throw invalidArgument(`${label}: the body holds ${count} ${unit} but the shape needs ${fixedCount}`);
      return;
    }
    if (fixedCount === 0 || count % fixedCount !== 0) {
      throw invalidArgument(`${label}: the body holds ${count} ${unit}, not a whole multiple of ${fixedCount}`);
    }
    shape[variable[0]] = count / fixedCount;
  };

  if (input.datatype === 'BYTES') {
    const data = decodeBytesElements(buffer, 0, buffer.length, undefined, label);
    fillShape(data.length, 'BYTES elements');
    return { name: input.name, datatype: input.datatype, shape, data };
  }
  const byteSize = DATATYPES[input.datatype].byteSize;
  if (buffer.length % byteSize !== 0) {
    throw invalidArgument(
      `${label}: the body has ${buffer.length} bytes, not a whole number of ${byteSize}-byte elements`,
    );
  }
  fillShape(buffer.length / byteSize, 'elements');
  if (input.datatype === 'BOOL') checkBoolBytes(buffer, label);
  return tensorOverBytes(input.name, input.datatype, shape, buffer);
}

function booleanParameter(parameters: Parameters | undefined, key: string, field: string): boolean | undefined {
  if (parameters === undefined || !Object.prototype.hasOwnProperty.call(parameters, key)) return undefined;
  const value = parameters[key];
  if (typeof value !== 'boolean')
    throw invalidArgument(`${field}.${key} must be a boolean, got ${describeJsonValue(value)}`);
  return value;
}

/**
 * Which outputs a request wants as blobs: request-level parameters.binary_data_output for all of
 * them, overridden per output by outputs[i].parameters.binary_data. Throws for non-boolean values.
 */
export function binaryOutputSelector(request: InferenceRequestHeader): (outputName: string) => boolean {
  const forAll = booleanParameter(request.parameters, 'binary_data_output', 'parameters') ?? false;
  const perOutput = new Map<string, boolean>();
  request.outputs?.forEach((output, index) => {
    const binary = booleanParameter(output.parameters, 'binary_data', `outputs[${index}].parameters`);
    if (binary !== undefined) perOutput.set(output.name, binary);
  });
  return (outputName) => perOutput.get(outputName) ?? forAll;
}

/** The blob of a tensor: a view of numeric storage (no copy), or the length-prefixed BYTES encoding. */
export function encodeBlob(datatype: Datatype, data: TensorData): Uint8Array {
  if (datatype !== 'BYTES') {
    const numeric = data as NumericData;
    return new Uint8Array(numeric.buffer, numeric.byteOffset, numeric.byteLength);
  }
  const encoded = (data as string[]).map((string) => UTF8_ENCODER.encode(string));
  let size = 0;
  for (const bytes of encoded) size += LENGTH_PREFIX_BYTES + bytes.length;
  const blob = new Uint8Array(size);
  const view = dataViewOf(blob);
  let position = 0;
  for (const bytes of encoded) {
    view.setUint32(position, bytes.length, true);
    blob.set(bytes, position + LENGTH_PREFIX_BYTES);
    position += LENGTH_PREFIX_BYTES + bytes.length;
  }
  return blob;
}

/** Blobs for the tensors that go binary, and binary_data_size per tensor (undefined for JSON ones). */
function blobsFor(
  tensors: readonly NamedTensor[],
  list: 'inputs' | 'outputs',
  isBinary: (name: string) => boolean,
): { blobs: Uint8Array[]; sizes: (number | undefined)[] } {
  const blobs: Uint8Array[] = [];
  const sizes = tensors.map((tensor, index) => {
    if (!isBinary(tensor.name)) return undefined;
    checkTensorData(tensor, tensorLabel(list, index, tensor.name));
    const blob = encodeBlob(tensor.datatype, tensor.data);
    blobs.push(blob);
    return blob.length;
  });
  return { blobs, sizes };
}

function assemble(json: string, blobs: Uint8Array[]): EncodedBody {
  const header = UTF8_ENCODER.encode(json);
  let byteLength = header.length;
  for (const blob of blobs) byteLength += blob.length;
  return { chunks: [header, ...blobs], headerLength: header.length, byteLength };
}

/**
 * A response with the outputs `isBinary` picks sent as blobs (see binaryOutputSelector; raw-mode
 * requests get every output binary). The numeric blobs are views of the outputs' storage.
 */
export function encodeBinaryResponse(
  response: InferenceResponse,
  isBinary: (outputName: string) => boolean,
): EncodedBody {
  const { blobs, sizes } = blobsFor(response.outputs, 'outputs', isBinary);
  return assemble(encodeJsonResponse(response, sizes), blobs);
}

/** Client side: a request with the inputs `isBinary` picks (all by default) sent as blobs. */
export function encodeBinaryRequest(
  request: InferenceRequest,
  isBinary: (inputName: string) => boolean = () => true,
): EncodedBody {
  const { blobs, sizes } = blobsFor(request.inputs, 'inputs', isBinary);
  return assemble(encodeJsonRequest(request, sizes), blobs);
}

/** Client side: decodes a response; without a header length the whole body is JSON. */
export function decodeBinaryResponse(buffer: Uint8Array, headerLength: number | undefined): DecodedInferenceResponse {
  const jsonLength = headerLength ?? buffer.length;
  if (headerLength !== undefined) checkHeaderLength(headerLength, buffer.length);
  const header = parseInferenceResponse(buffer.subarray(0, jsonLength));
  return { header, outputs: decodeTensors(buffer, jsonLength, header.outputs, 'outputs') };
}

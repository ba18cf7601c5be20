/**
 * The JSON side of the Open Inference Protocol: its message types and the validation of request and
 * response headers. Parsing JSON text is json-parse.ts, tensor data in is json-decode.ts, out is
 * json-encode.ts. Pure functions; no HTTP, no onnxruntime.
 *
 * Wire conventions of the JSON side (kept by json-parse.ts, json-decode.ts and json-encode.ts):
 * - INT64/UINT64 stay exact: integer literals beyond ±(2^53−1) are parsed as bigint, and decimal
 *   strings are accepted as elements; on output 64-bit integers are printed as plain integer literals.
 * - Non-finite floats are written as the strings "NaN", "Infinity" and "-Infinity" (JSON has no
 *   literal for them), and the same strings are accepted on input.
 * - FP32 values are written as the shortest decimal of their float64 widening (what JavaScript
 *   prints for the number): exact, if longer than the shortest float32 decimal.
 *   -0 is written as -0.
 */

import { DATATYPES, elementCount, isDatatype, type Datatype, type NamedTensor } from './datatypes.js';
import { invalidArgument } from './errors.js';
import { parseJson, textOf } from './json-parse.js';
import { formatShape } from './shape.js';

export type ParameterValue = string | number | boolean;
export type Parameters = Record<string, ParameterValue>;

/** A tensor as a JSON header lists it: request inputs and response outputs alike. */
export interface TensorHeader {
  name: string;
  shape: number[];
  datatype: Datatype;
  parameters?: Parameters;
  /** Flat or nested row-major elements, unchecked until decodeJsonTensorData; absent for binary tensors. */
  data?: unknown;
}

export type RequestInput = TensorHeader;

export interface RequestedOutput {
  name: string;
  parameters?: Parameters;
}

export interface InferenceRequestHeader {
  id?: string;
  parameters?: Parameters;
  inputs: RequestInput[];
  outputs?: RequestedOutput[];
}

export interface InferenceResponseHeader {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: TensorHeader[];
}

/** A named tensor with the parameters it carries on the wire (request input or response output). */
export interface WireTensor extends NamedTensor {
  parameters?: Parameters;
}

/** A request with its tensors decoded; `inputs[i]` belongs to `header.inputs[i]`. */
export interface DecodedInferenceRequest {
  header: InferenceRequestHeader;
  inputs: NamedTensor[];
}

/** A response with its tensors decoded; `outputs[i]` belongs to `header.outputs[i]`. */
export interface DecodedInferenceResponse {
  header: InferenceResponseHeader;
  outputs: NamedTensor[];
}

/** What the server answers: `$inference_response` of the protocol. */
export interface InferenceResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: WireTensor[];
}

/** What a client sends; encodeJsonRequest and encodeBinaryRequest write it. */
export interface InferenceRequest {
  id?: string;
  parameters?: Parameters;
  inputs: WireTensor[];
  outputs?: RequestedOutput[];
}

/** More dimensions than any real model has; the bound keeps nested-data walks shallow. */
export const MAX_RANK = 64;

// ---------------------------------------------------------------------------------------------
// Header validation

type JsonObject = Record<string, unknown>;

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A property the object itself has; a polluted Object.prototype can't answer for a missing field. */
function own(object: JsonObject, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
}

const MAX_DESCRIBED_LENGTH = 80;

/** A short JSON-like rendering of a value for `got …` in messages; bigints print as integer literals. */
export function describeJsonValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text =
      JSON.stringify(value, (_key, element: unknown) =>
        typeof element === 'bigint' ? `\u0000bigint:${element}` : element,
      ) ?? String(value);
    text = text.replace(/"\\u0000bigint:(-?\d+)"/g, '$1');
  } catch {
    text = Array.isArray(value) ? 'an array' : typeof value; // too deep to print
  }
  return text.length > MAX_DESCRIBED_LENGTH ? `${text.slice(0, MAX_DESCRIBED_LENGTH)}…` : text;
}

function fieldPath(parent: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

/** Datatypes the protocol defines but onnxruntime-node cannot hold, with what to send instead. */
const UNSUPPORTED_DATATYPES = new Map<string, string>([['BF16', 'send FP32 or FP16']]);
const DATATYPE_NAMES = Object.keys(DATATYPES).join(', ');

function validateParameters(value: unknown, field: string): Parameters | undefined {
  if (value === undefined) return undefined;
  if (!isJsonObject(value)) throw invalidArgument(`${field} must be an object, got ${describeJsonValue(value)}`);
  for (const key of Object.keys(value)) {
    const parameter = value[key];
    const type = typeof parameter;
    if (type === 'string' || type === 'number' || type === 'boolean') continue;
    if (type === 'bigint') {
      throw invalidArgument(
        `${fieldPath(field, key)} is ${describeJsonValue(parameter)}, beyond the ±2^53 range of parameter numbers; send it as a string`,
      );
    }
    throw invalidArgument(
      `${fieldPath(field, key)} must be a string, number or boolean, got ${describeJsonValue(parameter)}`,
    );
  }
  return value as Parameters;
}

function validateName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalidArgument(`${field} must be a non-empty string, got ${describeJsonValue(value)}`);
  }
  return value;
}

function validateShape(value: unknown, field: string): number[] {
  if (
    !Array.isArray(value) ||
    !value.every((dim) => typeof dim === 'number' && Number.isSafeInteger(dim) && dim >= 0)
  ) {
    throw invalidArgument(`${field} must be an array of non-negative integers, got ${describeJsonValue(value)}`);
  }
  const shape = value as number[];
  // An empty tensor runs nothing, and a zero would hide an overflowing dimension from the count below
  // (onnxruntime then fails with a 500); JSON, binary and gRPC headers all come through here.
  const zero = shape.indexOf(0);
  if (zero >= 0) {
    throw invalidArgument(
      `${field}[${zero}] is 0 in ${formatShape(shape)}; every dimension must be at least 1 (empty tensors are not run)`,
    );
  }
  if (shape.length > MAX_RANK) {
    throw invalidArgument(`${field} has ${shape.length} dimensions; at most ${MAX_RANK} are supported`);
  }
  if (!Number.isSafeInteger(elementCount(shape))) {
    throw invalidArgument(`${field} ${formatShape(shape)} holds more than 2^53 elements`);
  }
  return shape;
}

function validateDatatype(value: unknown, field: string): Datatype {
  if (isDatatype(value)) return value;
  const alternative = typeof value === 'string' ? UNSUPPORTED_DATATYPES.get(value) : undefined;
  if (alternative !== undefined) {
    throw invalidArgument(`${JSON.stringify(value)} is not supported by onnxruntime-node (${field}); ${alternative}`);
  }
  throw invalidArgument(`${field} must be one of ${DATATYPE_NAMES}, got ${describeJsonValue(value)}`);
}

function validateTensorHeader(value: unknown, field: string): TensorHeader {
  if (!isJsonObject(value)) throw invalidArgument(`${field} must be an object, got ${describeJsonValue(value)}`);
  const tensor: TensorHeader = {
    name: validateName(own(value, 'name'), `${field}.name`),
    shape: validateShape(own(value, 'shape'), `${field}.shape`),
    datatype: validateDatatype(own(value, 'datatype'), `${field}.datatype`),
  };
  const parameters = validateParameters(own(value, 'parameters'), `${field}.parameters`);
  if (parameters !== undefined) tensor.parameters = parameters;
  const data = own(value, 'data');
  if (data !== undefined) tensor.data = data;
  return tensor;
}

function validateRequestedOutput(value: unknown, field: string): RequestedOutput {
  if (!isJsonObject(value)) throw invalidArgument(`${field} must be an object, got ${describeJsonValue(value)}`);
  const output: RequestedOutput = { name: validateName(own(value, 'name'), `${field}.name`) };
  const parameters = validateParameters(own(value, 'parameters'), `${field}.parameters`);
  if (parameters !== undefined) output.parameters = parameters;
  return output;
}

/** Validates each element of a named list and refuses a name that appears twice. */
function validateNamedList<T extends { name: string }>(
  value: unknown[],
  list: string,
  validateElement: (element: unknown, field: string) => T,
): T[] {
  const firstIndexOf = new Map<string, number>();
  return value.map((element, index) => {
    const field = `${list}[${index}]`;
    const validated = validateElement(element, field);
    const first = firstIndexOf.get(validated.name);
    if (first !== undefined) {
      throw invalidArgument(
        `${field}.name ${JSON.stringify(validated.name)} appears twice (first at ${list}[${first}])`,
      );
    }
    firstIndexOf.set(validated.name, index);
    return validated;
  });
}

function validateOptionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw invalidArgument(`${field} must be a string, got ${describeJsonValue(value)}`);
}

/** Checks the shape of an already-parsed request header (not its tensor data) and returns it typed. */
export function validateInferenceRequest(value: unknown): InferenceRequestHeader {
  if (!isJsonObject(value))
    throw invalidArgument(`request body must be a JSON object, got ${describeJsonValue(value)}`);
  const inputs = own(value, 'inputs');
  // Empty for a model without inputs (a graph of constants); the model's signature decides the rest.
  if (!Array.isArray(inputs)) {
    throw invalidArgument(
      inputs === undefined
        ? 'inputs must be an array of tensors ([] for a model without inputs)'
        : `inputs must be an array of tensors ([] for a model without inputs), got ${describeJsonValue(inputs)}`,
    );
  }
  const header: InferenceRequestHeader = { inputs: validateNamedList(inputs, 'inputs', validateTensorHeader) };
  const id = validateOptionalString(own(value, 'id'), 'id');
  if (id !== undefined) header.id = id;
  const parameters = validateParameters(own(value, 'parameters'), 'parameters');
  if (parameters !== undefined) header.parameters = parameters;
  const outputs = own(value, 'outputs');
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw invalidArgument(`outputs must be an array, got ${describeJsonValue(outputs)}`);
    header.outputs = validateNamedList(outputs, 'outputs', validateRequestedOutput);
  }
  return header;
}

/** Parses and validates the JSON header of an inference request (the whole body, or its JSON part). */
export function parseInferenceRequest(body: Uint8Array | string): InferenceRequestHeader {
  return validateInferenceRequest(parseJson(textOf(body), 'request body', true));
}

/** Client side: parses and validates the JSON header of an inference response. */
export function parseInferenceResponse(body: Uint8Array | string): InferenceResponseHeader {
  const value = parseJson(textOf(body), 'response body', true);
  if (!isJsonObject(value))
    throw invalidArgument(`response body must be a JSON object, got ${describeJsonValue(value)}`);
  const outputs = own(value, 'outputs');
  if (!Array.isArray(outputs)) throw invalidArgument(`outputs must be an array, got ${describeJsonValue(outputs)}`);
  const header: InferenceResponseHeader = {
    model_name: validateName(own(value, 'model_name'), 'model_name'),
    outputs: validateNamedList(outputs, 'outputs', validateTensorHeader),
  };
  const modelVersion = validateOptionalString(own(value, 'model_version'), 'model_version');
  if (modelVersion !== undefined) header.model_version = modelVersion;
  const id = validateOptionalString(own(value, 'id'), 'id');
  if (id !== undefined) header.id = id;
  const parameters = validateParameters(own(value, 'parameters'), 'parameters');
  if (parameters !== undefined) header.parameters = parameters;
  return header;
}

/**
 * The JSON side of the Open Inference Protocol: parsing and validating inference request headers,
 * turning their `data` into typed arrays, and writing responses (and, for clients, requests) as
 * JSON text. Pure functions; no HTTP, no onnxruntime.
 *
 * Wire conventions decided here:
 * - INT64/UINT64 stay exact: integer literals beyond ±(2^53−1) are parsed as bigint, and decimal
 *   strings are accepted as elements; on output 64-bit integers are printed as plain integer literals.
 * - Non-finite floats are written as the strings "NaN", "Infinity" and "-Infinity" (JSON has no
 *   literal for them), and the same strings are accepted on input.
 * - FP32 values are written as the shortest decimal of their float64 widening (what JavaScript
 *   prints for the number): exact, if longer than the shortest float32 decimal.
 *   -0 is written as -0.
 */

import {
  DATATYPES,
  elementCount,
  float16BitsOf,
  isDatatype,
  numberOfFloat16Bits,
  type Datatype,
  type NamedTensor,
  type TensorData,
} from './datatypes.js';
import { internal, invalidArgument } from './errors.js';
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
// JSON text

/** UINT64's maximum has 20 digits; longer literals can't be exact 64-bit integers, and BigInt() of a megabyte of digits is slow. */
const MAX_BIGINT_LITERAL_LENGTH = 21;

class JsonSyntaxError extends Error {}

/**
 * Parses JSON text, keeping integer literals beyond ±(2^53−1) exact as bigint. Malformed text throws
 * invalidArgument `malformed JSON in <what>: <problem> at position <n>` (a UTF-16 offset).
 */
export function parseJsonText(text: string, what: string): unknown {
  return parseJson(text, what, false);
}

/**
 * parseJsonText, where `tensorDocument` says the text is an inference request or response: the
 * `data` of a tensor object whose datatype is FP16/FP32/FP64 is then left out of the scan for numbers
 * beyond 2^53. Such elements end as floats either way (Number of the exact bigint is what JSON.parse
 * gives), and that data is most of a JSON request: the decode loop reads it once instead of twice.
 */
function parseJson(text: string, what: string, tensorDocument: boolean): unknown {
  if (text.length === 0) throw invalidArgument(`malformed JSON in ${what}: it is empty`);
  try {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      // Node 20's messages often lack the position; the exact parser finds it.
      parseJsonExactly(text);
      throw new JsonSyntaxError(error instanceof Error ? error.message : String(error));
    }
    // Node 20's JSON.parse cannot show a reviver the source text, so a body that may have lost digits
    // is parsed again, exactly. (Scanning the parsed values is several times cheaper than a regular
    // expression over the text, which must also tell integer literals from fraction digits.)
    return holdsUnsafeNumber(value, tensorDocument) ? parseJsonExactly(text) : value;
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw invalidArgument(`malformed JSON in ${what}: ${error.message}`);
    throw error;
  }
}

/**
 * Whether a parsed value holds a number beyond ±(2^53−1). Every integer literal that JSON.parse
 * rounds lands there (so do huge floats such as 1e300, which merely cost an exact re-parse).
 */
function holdsUnsafeNumber(root: unknown, skipFloatData: boolean): boolean {
  if (typeof root !== 'object' || root === null) return isUnsafeNumber(root);
  const pending: object[] = [root];
  while (pending.length > 0) {
    const container = pending.pop()!;
    let elements: unknown[];
    if (Array.isArray(container)) elements = container;
    else if (skipFloatData && holdsFloatData(container as Record<string, unknown>)) {
      elements = Object.entries(container).flatMap(([key, value]) => (key === 'data' ? [] : [value]));
    } else elements = Object.values(container);
    if (elementsHoldUnsafeNumber(elements, pending)) return true;
  }
  return false;
}

const FLOAT_DATATYPE_NAMES = new Set<unknown>(['FP16', 'FP32', 'FP64']);

/** A tensor object (request input, response output) whose own `data` will be decoded as floats. */
function holdsFloatData(object: Record<string, unknown>): boolean {
  return (
    Object.prototype.hasOwnProperty.call(object, 'datatype') &&
    FLOAT_DATATYPE_NAMES.has(object.datatype) &&
    Object.prototype.hasOwnProperty.call(object, 'data')
  );
}

function isUnsafeNumber(value: unknown): boolean {
  return typeof value === 'number' && (value > Number.MAX_SAFE_INTEGER || value < -Number.MAX_SAFE_INTEGER);
}

/** The hot loop over data arrays of millions of numbers: checks them in place, queues containers. */
function elementsHoldUnsafeNumber(elements: unknown[], pending: object[]): boolean {
  for (let index = 0; index < elements.length; index++) {
    const element = elements[index];
    if (typeof element === 'number') {
      if (element > Number.MAX_SAFE_INTEGER || element < -Number.MAX_SAFE_INTEGER) return true;
    } else if (typeof element === 'object' && element !== null) {
      pending.push(element);
    }
  }
  return false;
}

/**
 * A validating JSON parser that returns integer literals beyond 2^53 as bigint. Iterative (an explicit
 * stack of open containers), so deep nesting cannot overflow the call stack. Objects get own
 * properties only, `__proto__` included, as JSON.parse does.
 */
function parseJsonExactly(text: string): unknown {
  const length = text.length;
  let position = 0;
  const containers: (unknown[] | Record<string, unknown>)[] = [];
  const keys: string[] = []; // the pending key of each open object ('' for arrays)

  const fail = (): never => {
    if (position >= length) throw new JsonSyntaxError(`Unexpected end of JSON input at position ${position}`);
    throw new JsonSyntaxError(`Unexpected token ${showCharacter(text[position])} at position ${position}`);
  };
  const skipWhitespace = (): void => {
    while (position < length) {
      const code = text.charCodeAt(position);
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) return;
      position++;
    }
  };
  const readString = (): string => {
    const start = position;
    position++; // opening quote
    let hasEscapes = false;
    for (;;) {
      if (position >= length) throw new JsonSyntaxError(`Unterminated string starting at position ${start}`);
      const code = text.charCodeAt(position);
      if (code === 0x22) break;
      if (code < 0x20) throw new JsonSyntaxError(`Bad control character in string at position ${position}`);
      if (code !== 0x5c) {
        position++;
        continue;
      }
      hasEscapes = true;
      const escaped = text.charCodeAt(position + 1);
      if (escaped === 0x75) {
        for (let digit = 2; digit < 6; digit++) {
          if (!isHexDigit(text.charCodeAt(position + digit))) {
            throw new JsonSyntaxError(`Bad Unicode escape in string at position ${position}`);
          }
        }
        position += 6;
      } else if (SIMPLE_ESCAPES.has(escaped)) {
        position += 2;
      } else if (position + 1 >= length) {
        throw new JsonSyntaxError(`Unterminated string starting at position ${start}`);
      } else {
        throw new JsonSyntaxError(`Bad escaped character in string at position ${position + 1}`);
      }
    }
    position++; // closing quote
    // The escapes were checked above, so JSON.parse of the literal cannot fail and decodes them exactly.
    return hasEscapes ? (JSON.parse(text.slice(start, position)) as string) : text.slice(start + 1, position - 1);
  };
  const skipDigits = (): void => {
    while (isDigit(text.charCodeAt(position))) position++;
  };
  const readNumber = (): number | bigint => {
    const start = position;
    if (text.charCodeAt(position) === 0x2d) position++;
    const first = text.charCodeAt(position);
    if (first === 0x30) position++;
    else if (first >= 0x31 && first <= 0x39) skipDigits();
    else fail();
    let isInteger = true;
    if (text.charCodeAt(position) === 0x2e) {
      isInteger = false;
      position++;
      if (!isDigit(text.charCodeAt(position))) fail();
      skipDigits();
    }
    const exponent = text.charCodeAt(position);
    if (exponent === 0x65 || exponent === 0x45) {
      isInteger = false;
      position++;
      const sign = text.charCodeAt(position);
      if (sign === 0x2b || sign === 0x2d) position++;
      if (!isDigit(text.charCodeAt(position))) fail();
      skipDigits();
    }
    const literal = text.slice(start, position);
    const value = Number(literal);
    if (isInteger && !Number.isSafeInteger(value) && literal.length <= MAX_BIGINT_LITERAL_LENGTH)
      return BigInt(literal);
    return value;
  };
  const readLiteral = <T>(word: string, value: T): T => {
    for (let index = 0; index < word.length; index++, position++) {
      if (text.charCodeAt(position) !== word.charCodeAt(index)) fail();
    }
    return value;
  };
  const readKey = (): string => {
    if (text.charCodeAt(position) !== 0x22) fail();
    const key = readString();
    skipWhitespace();
    if (text.charCodeAt(position) !== 0x3a) fail();
    position++;
    skipWhitespace();
    return key;
  };

  skipWhitespace();
  readValue: for (;;) {
    let value: unknown;
    const code = text.charCodeAt(position);
    if (code === 0x7b) {
      position++;
      skipWhitespace();
      const object: Record<string, unknown> = {};
      if (text.charCodeAt(position) === 0x7d) {
        position++;
        value = object;
      } else {
        containers.push(object);
        keys.push(readKey());
        continue;
      }
    } else if (code === 0x5b) {
      position++;
      skipWhitespace();
      const array: unknown[] = [];
      if (text.charCodeAt(position) === 0x5d) {
        position++;
        value = array;
      } else {
        containers.push(array);
        keys.push('');
        continue;
      }
    } else if (code === 0x22) value = readString();
    else if (code === 0x2d || isDigit(code)) value = readNumber();
    else if (code === 0x74) value = readLiteral('true', true);
    else if (code === 0x66) value = readLiteral('false', false);
    else if (code === 0x6e) value = readLiteral('null', null);
    else fail();

    // Store the value in its container, then close every container that ends right after it.
    for (;;) {
      if (containers.length === 0) {
        skipWhitespace();
        if (position < length) fail();
        return value;
      }
      const container = containers[containers.length - 1];
      const isArray = Array.isArray(container);
      if (isArray) container.push(value);
      else setOwnProperty(container, keys[keys.length - 1], value);
      skipWhitespace();
      const next = text.charCodeAt(position);
      if (next === 0x2c) {
        position++;
        skipWhitespace();
        if (!isArray) keys[keys.length - 1] = readKey();
        continue readValue;
      }
      if (next !== (isArray ? 0x5d : 0x7d)) fail();
      position++;
      containers.pop();
      keys.pop();
      value = container;
    }
  }
}

const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]); // " \ / b f n r t

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function isHexDigit(code: number): boolean {
  return isDigit(code) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);
}

function showCharacter(character: string): string {
  return /^[\x21-\x7e]$/.test(character)
    ? character
    : `U+${character.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Plain assignment of `__proto__` would replace the prototype; JSON semantics make it an own property. */
function setOwnProperty(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

// TextDecoder rather than Buffer: the client (onnx-serve/client) runs in browsers and imports this module.
const UTF8_DECODER = new TextDecoder('utf-8', { ignoreBOM: true });

function textOf(body: Uint8Array | string): string {
  return typeof body === 'string' ? body : UTF8_DECODER.decode(body);
}

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
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw invalidArgument(
      inputs === undefined
        ? 'inputs must be a non-empty array'
        : `inputs must be a non-empty array, got ${describeJsonValue(inputs)}`,
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

// ---------------------------------------------------------------------------------------------
// Tensor data: JSON elements → typed arrays

/**
 * `inputs[0] ("x")`: how messages name a tensor of a request or response; `input "x"` where the
 * position is unknown (data that came from elsewhere, such as warmup configuration).
 */
export function tensorLabel(list: 'inputs' | 'outputs', index: number | undefined, name: string): string {
  if (index === undefined) return `${list === 'inputs' ? 'input' : 'output'} ${JSON.stringify(name)}`;
  return `${list}[${index}] (${JSON.stringify(name)})`;
}

type ElementWriter = (value: unknown, index: number) => void;

const NON_FINITE_STRINGS = new Map<unknown, number>([
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
]);
/** Decimal strings for INT64/UINT64 elements; 20 digits hold every 64-bit value. */
const DECIMAL_INTEGER = /^-?\d{1,20}$/;
const FP32_MAX = 3.4028234663852886e38;
const FP16_MAX = 65504;

/** A function that checks one JSON element for `datatype` and stores it at `index` of `target`. */
function elementWriter(datatype: Datatype, target: TensorData, label: string): ElementWriter {
  const info = DATATYPES[datatype];
  const wrongKind = (value: unknown, index: number, expected: string) =>
    invalidArgument(`${label}: element ${index} is ${describeJsonValue(value)}, expected ${expected}`);
  const outOfRange = (value: unknown, index: number, min: unknown, max: unknown) =>
    invalidArgument(
      `${label}: element ${index} is ${describeJsonValue(value)}, out of range for ${datatype} [${String(min)}, ${String(max)}]`,
    );
  const toFloat = (value: unknown, index: number): number => {
    if (typeof value === 'number') return value;
    if (typeof value === 'bigint') return Number(value);
    const nonFinite = NON_FINITE_STRINGS.get(value);
    if (nonFinite !== undefined) return nonFinite;
    throw wrongKind(value, index, `a number or "NaN", "Infinity", "-Infinity" for ${datatype}`);
  };

  switch (info.kind) {
    case 'bool': {
      const out = target as Uint8Array;
      return (value, index) => {
        if (value === true || value === 1) out[index] = 1;
        else if (value === false || value === 0) out[index] = 0;
        else throw wrongKind(value, index, 'true, false, 0 or 1 for BOOL');
      };
    }
    case 'int': {
      const out = target as Int32Array; // any of the ≤32-bit integer arrays; they store numbers alike
      const min = info.min as number;
      const max = info.max as number;
      return (value, index) => {
        if (typeof value === 'number' && Number.isInteger(value)) {
          if (value < min || value > max) throw outOfRange(value, index, min, max);
          out[index] = value;
        } else if (typeof value === 'bigint') {
          throw outOfRange(value, index, min, max); // bigints only come from literals beyond 2^53
        } else {
          throw wrongKind(value, index, `an integer for ${datatype}`);
        }
      };
    }
    case 'bigint': {
      const out = target as BigInt64Array;
      const min = info.min as bigint;
      const max = info.max as bigint;
      return (value, index) => {
        let integer: bigint;
        if (typeof value === 'number' && Number.isSafeInteger(value)) integer = BigInt(value);
        else if (typeof value === 'bigint') integer = value;
        else if (typeof value === 'string' && DECIMAL_INTEGER.test(value)) integer = BigInt(value);
        else if (typeof value === 'number' && Number.isInteger(value)) {
          throw wrongKind(
            value,
            index,
            `an exact integer; send ${datatype} values beyond 2^53 as integer literals or decimal strings`,
          );
        } else {
          throw wrongKind(value, index, `an integer or a decimal string for ${datatype}`);
        }
        if (integer < min || integer > max) throw outOfRange(value, index, min, max);
        out[index] = integer;
      };
    }
    case 'float': {
      const out = target as Float32Array | Float64Array;
      return (value, index) => {
        const number = toFloat(value, index);
        out[index] = number;
        // A finite number that became Infinity in a Float32Array was too large for FP32.
        if (Number.isFinite(number) && !Number.isFinite(out[index])) {
          throw outOfRange(value, index, -FP32_MAX, FP32_MAX);
        }
      };
    }
    case 'float16': {
      const out = target as Uint16Array;
      return (value, index) => {
        const number = toFloat(value, index);
        const bits = float16BitsOf(number);
        if ((bits & 0x7fff) === 0x7c00 && Number.isFinite(number)) throw outOfRange(value, index, -FP16_MAX, FP16_MAX);
        out[index] = bits;
      };
    }
    case 'bytes': {
      const out = target as string[];
      return (value, index) => {
        if (typeof value !== 'string') throw wrongKind(value, index, 'a string for BYTES');
        out[index] = value;
      };
    }
  }
}

/**
 * Turns a tensor header's JSON `data` into typed storage. `data` may be flat (row-major) or nested
 * exactly like the shape; elements must suit the datatype (see the module comment). `list` and
 * `index` say where the tensor sits, for messages: `inputs[0] ("x"): …`.
 */
export function decodeJsonTensorData(
  tensor: TensorHeader,
  index?: number,
  list: 'inputs' | 'outputs' = 'inputs',
): NamedTensor {
  const label = tensorLabel(list, index, tensor.name);
  const { name, datatype, shape, data } = tensor;
  if (data === undefined) throw invalidArgument(`${label} has no data; send data or parameters.binary_data_size`);
  if (!Array.isArray(data)) throw invalidArgument(`${label}: data must be an array, got ${describeJsonValue(data)}`);
  const count = elementCount(shape);
  const nested = shape.length >= 2 && data.length > 0 && Array.isArray(data[0]);
  if (!nested && data.length !== count) {
    throw invalidArgument(`${label}: data has ${data.length} elements but shape ${formatShape(shape)} needs ${count}`);
  }
  const target = DATATYPES[datatype].create(count);
  const write = elementWriter(datatype, target, label);
  const floats = DATATYPES[datatype].kind === 'float' ? (target as Float32Array | Float64Array) : undefined;
  // FP32/FP64: a tight loop stores plain numbers that surely fit; anything else takes `write`.
  const fastBound = datatype === 'FP32' ? FP32_MAX : Number.MAX_VALUE;

  if (!nested) {
    const flatElement = (value: unknown, element: number): void => {
      if (Array.isArray(value)) {
        throw invalidArgument(
          `${label}: element ${element} is an array; data must be flat, or nested exactly like shape ${formatShape(shape)}`,
        );
      }
      write(value, element);
    };
    if (floats !== undefined) {
      for (let element = 0; element < count; element++) {
        const value: unknown = data[element];
        if (typeof value === 'number' && value <= fastBound && value >= -fastBound) floats[element] = value;
        else flatElement(value, element);
      }
    } else {
      for (let element = 0; element < count; element++) flatElement(data[element], element);
    }
    return { name, datatype, shape, data: target };
  }

  let written = 0;
  const lastLevel = shape.length - 1;
  // Recursion depth is bounded by the rank (MAX_RANK), not by the data.
  const walk = (array: unknown[], level: number, path: string): void => {
    if (array.length !== shape[level]) {
      throw invalidArgument(
        `${label}: data${path} has ${array.length} elements but shape[${level}] is ${shape[level]} (shape ${formatShape(shape)})`,
      );
    }
    for (let position = 0; position < array.length; position++) {
      const value: unknown = array[position];
      if (level === lastLevel && floats !== undefined && typeof value === 'number') {
        if (value <= fastBound && value >= -fastBound) {
          floats[written++] = value;
          continue;
        }
      }
      if (level === lastLevel) {
        if (Array.isArray(value)) {
          throw invalidArgument(`${label}: data${path}[${position}] is nested deeper than shape ${formatShape(shape)}`);
        }
        write(value, written++);
      } else if (Array.isArray(value)) {
        walk(value, level + 1, `${path}[${position}]`);
      } else {
        throw invalidArgument(
          `${label}: data${path}[${position}] must be an array of ${shape[level + 1]} elements ` +
            `(shape[${level + 1}] of ${formatShape(shape)}), got ${describeJsonValue(value)}`,
        );
      }
    }
  };
  walk(data, 0, '');
  return { name, datatype, shape, data: target };
}

/** The value of `parameters.binary_data_size`, validated, or undefined when the tensor has none. */
export function binaryDataSizeOf(tensor: TensorHeader, label: string): number | undefined {
  const parameters = tensor.parameters;
  if (parameters === undefined || !Object.prototype.hasOwnProperty.call(parameters, 'binary_data_size'))
    return undefined;
  const size = parameters.binary_data_size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalidArgument(
      `${label}: parameters.binary_data_size must be a non-negative integer, got ${describeJsonValue(size)}`,
    );
  }
  return size;
}

/** Parses a JSON-only request (no Inference-Header-Content-Length) and decodes every input's data. */
export function decodeJsonRequest(body: Uint8Array | string): DecodedInferenceRequest {
  const header = parseInferenceRequest(body);
  return { header, inputs: decodeJsonInputs(header) };
}

/** Decodes the data of every input of a parsed JSON-only request. */
export function decodeJsonInputs(header: InferenceRequestHeader): NamedTensor[] {
  return header.inputs.map((input, index) => {
    const label = tensorLabel('inputs', index, input.name);
    if (binaryDataSizeOf(input, label) !== undefined) {
      throw invalidArgument(
        `${label} has parameters.binary_data_size but the request has no Inference-Header-Content-Length header`,
      );
    }
    return decodeJsonTensorData(input, index);
  });
}

/** Client side: parses a JSON-only response and decodes every output's data. */
export function decodeJsonResponse(body: Uint8Array | string): DecodedInferenceResponse {
  const header = parseInferenceResponse(body);
  return { header, outputs: header.outputs.map((output, index) => decodeJsonTensorData(output, index, 'outputs')) };
}

// ---------------------------------------------------------------------------------------------
// Tensor data: typed arrays → JSON text

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

function floatsJson(values: Float32Array | Float64Array): string {
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
      return floatsJson(data as Float32Array | Float64Array);
    case 'float16': {
      const bits = data as Uint16Array;
      const values = new Float64Array(bits.length);
      for (let index = 0; index < bits.length; index++) values[index] = numberOfFloat16Bits(bits[index]);
      return floatsJson(values);
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

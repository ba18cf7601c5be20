/**
 * Tensor data from JSON: the `data` arrays of a parsed request or response into typed arrays, each
 * element checked against its datatype (range, kind, exact INT64), with messages naming the tensor.
 */
import {
  DATATYPES,
  elementCount,
  float16BitsOf,
  type Datatype,
  type NamedTensor,
  type TensorData,
} from './datatypes.js';
import { invalidArgument } from './errors.js';
import {
  describeJsonValue,
  parseInferenceRequest,
  parseInferenceResponse,
  type DecodedInferenceRequest,
  type DecodedInferenceResponse,
  type InferenceRequestHeader,
  type TensorHeader,
} from './json-codec.js';
import { formatShape } from './shape.js';

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

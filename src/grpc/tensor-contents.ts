/**
 * gRPC inference messages ⇄ the server's tensors: inputs from typed `contents` or
 * `raw_input_contents`, outputs always in `raw_output_contents` (as Triton answers). Pure functions
 * over the decoded protobuf objects (see proto.ts).
 *
 * - The request header goes through the same validation as a JSON request header, so names,
 *   shapes, datatypes and parameters are refused with the same messages on both transports.
 * - Raw entries are decoded like the HTTP binary extension's blobs (little-endian, BYTES with a
 *   4-byte length prefix, BOOL as 0/1 bytes).
 * - INT64/UINT64 contents stay exact: proto-loader hands them over as decimal strings.
 * - FP16 has no typed field: a request sends it raw.
 */
import { decodeTensorBlob, encodeBlob } from '../protocol/binary-extension.js';
import { DATATYPES, elementCount, type Datatype, type NamedTensor, type TensorData } from '../protocol/datatypes.js';
import { decodeBytesElement } from '../protocol/bytes-elements.js';
import { invalidArgument } from '../protocol/errors.js';
import {
  validateInferenceRequest,
  type InferenceRequestHeader,
  type InferenceResponse,
  type ParameterValue,
} from '../protocol/json-codec.js';
import { tensorLabel } from '../protocol/json-decode.js';
import { formatShape } from '../protocol/shape.js';
import type {
  InferParameter,
  InferTensor,
  InferTensorContents,
  ModelInferRequest,
  ModelInferResponse,
} from './proto.js';

/** A gRPC request turned into what runInference takes. */
export interface DecodedGrpcRequest {
  header: InferenceRequestHeader;
  /** Decodes the inputs' data; runs after the header was checked against the model. */
  decodeInputs: () => NamedTensor[];
}

type ContentsField = keyof InferTensorContents;

/** The typed field that carries each datatype's elements; FP16 has none. */
const CONTENTS_FIELD: Readonly<Record<Datatype, ContentsField | undefined>> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP16: undefined,
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

const CONTENTS_FIELDS = Object.keys({
  bool_contents: 0,
  int_contents: 0,
  int64_contents: 0,
  uint_contents: 0,
  uint64_contents: 0,
  fp32_contents: 0,
  fp64_contents: 0,
  bytes_contents: 0,
} satisfies Record<ContentsField, 0>) as ContentsField[];

/** An InferParameter's value as the protocol's JSON parameters hold it (int64 beyond 2^53 as bigint, refused later). */
function parameterValue(parameter: InferParameter): ParameterValue | bigint | undefined {
  const choice = parameter.parameter_choice;
  if (choice === undefined) return undefined;
  const value = parameter[choice]!;
  if (choice !== 'int64_param' && choice !== 'uint64_param') return value as ParameterValue;
  const number = Number(value);
  return Number.isSafeInteger(number) ? number : BigInt(value);
}

function parametersOf(
  parameters: Record<string, InferParameter> | undefined,
): Record<string, ParameterValue | bigint | undefined> | undefined {
  if (parameters === undefined || Object.keys(parameters).length === 0) return undefined;
  return Object.fromEntries(Object.entries(parameters).map(([key, value]) => [key, parameterValue(value)]));
}

/** Shapes arrive as decimal strings; the header validation refuses anything not a safe non-negative integer. */
function shapeOf(shape: readonly (string | number)[]): number[] {
  return shape.map(Number);
}

/**
 * Turns a ModelInferRequest into a validated request header and a decoder for its inputs: from
 * raw_input_contents when the request has them (then no input may carry typed contents), else from
 * each input's typed contents.
 */
export function decodeInferRequest(request: ModelInferRequest): DecodedGrpcRequest {
  const header = validateInferenceRequest({
    ...(request.id ? { id: request.id } : {}),
    ...optional('parameters', parametersOf(request.parameters)),
    inputs: request.inputs.map((input) => ({
      name: input.name,
      datatype: input.datatype,
      shape: shapeOf(input.shape),
      ...optional('parameters', parametersOf(input.parameters)),
    })),
    ...(request.outputs !== undefined && request.outputs.length > 0
      ? {
          outputs: request.outputs.map((output) => ({
            name: output.name,
            ...optional('parameters', parametersOf(output.parameters)),
          })),
        }
      : {}),
  });

  const raw = request.raw_input_contents ?? [];
  if (raw.length === 0) {
    return {
      header,
      decodeInputs: () => header.inputs.map((input, i) => decodeTyped(request.inputs[i], input, i)),
    };
  }
  if (raw.length !== header.inputs.length) {
    throw invalidArgument(
      `raw_input_contents has ${raw.length} entries but the request has ${header.inputs.length} inputs; send one entry per input, in the order of inputs`,
    );
  }
  request.inputs.forEach((input, index) => {
    const field = setContentsFields(input.contents)[0];
    if (field !== undefined) {
      throw invalidArgument(
        `${tensorLabel('inputs', index, input.name)} has contents.${field} but the request uses raw_input_contents; send every input one way`,
      );
    }
  });
  return {
    header,
    decodeInputs: () =>
      header.inputs.map((input, index) => {
        const blob = Buffer.from(raw[index].buffer, raw[index].byteOffset, raw[index].byteLength);
        const label = `raw_input_contents[${index}] (input ${JSON.stringify(input.name)})`;
        const data = decodeTensorBlob(blob, input, label, `it has ${blob.length} bytes`);
        return { name: input.name, datatype: input.datatype, shape: input.shape, data };
      }),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function setContentsFields(contents: InferTensorContents | null | undefined): ContentsField[] {
  if (contents === null || contents === undefined) return [];
  return CONTENTS_FIELDS.filter((field) => (contents[field]?.length ?? 0) > 0);
}

/** One input's elements from its typed contents, checked for field, count and range. */
function decodeTyped(
  message: InferTensor,
  input: { name: string; datatype: Datatype; shape: number[] },
  index: number,
): NamedTensor {
  const label = tensorLabel('inputs', index, input.name);
  const { datatype, shape } = input;
  const expected = CONTENTS_FIELD[datatype];
  const count = elementCount(shape);
  if (expected === undefined) {
    throw invalidArgument(`${label} is ${datatype}, which has no typed contents; send it in raw_input_contents`);
  }
  const wrong = setContentsFields(message.contents).find((field) => field !== expected);
  if (wrong !== undefined) {
    throw invalidArgument(
      `${label} is ${datatype} but carries contents.${wrong}; ${datatype} elements go in contents.${expected}`,
    );
  }
  const values = (message.contents?.[expected] ?? []) as unknown[];
  if (values.length !== count) {
    throw invalidArgument(
      `${label}: contents.${expected} has ${values.length} elements but shape ${formatShape(shape)} needs ${count}` +
        (values.length === 0 ? ' (send contents or raw_input_contents)' : ''),
    );
  }
  return { name: input.name, datatype, shape, data: typedData(datatype, values, `${label}: contents.${expected}`) };
}

function typedData(datatype: Datatype, values: unknown[], label: string): TensorData {
  const info = DATATYPES[datatype];
  const outOfRange = (value: unknown, index: number) =>
    invalidArgument(
      `${label} element ${index} is ${String(value)}, out of range for ${datatype} [${String(info.min)}, ${String(info.max)}]`,
    );
  switch (info.kind) {
    case 'bool':
      return Uint8Array.from(values as boolean[], (value) => (value ? 1 : 0));
    case 'int': {
      const data = info.create(values.length) as Int32Array;
      (values as number[]).forEach((value, index) => {
        if (value < (info.min as number) || value > (info.max as number)) throw outOfRange(value, index);
        data[index] = value;
      });
      return data;
    }
    case 'bigint': {
      // The wire type (int64/uint64) already bounds the values to the datatype's range.
      const data = info.create(values.length) as BigInt64Array;
      (values as string[]).forEach((value, index) => (data[index] = BigInt(value)));
      return data;
    }
    case 'float': {
      const data = info.create(values.length) as Float64Array;
      data.set(values as number[]);
      return data;
    }
    case 'bytes':
      return (values as Uint8Array[]).map((bytes, index) => decodeBytesElement(bytes, label, index));
    case 'float16':
      throw invalidArgument(`${label}: FP16 has no typed contents; send it in raw_input_contents`);
  }
}

/**
 * The ModelInferResponse for an inference result, always in raw_output_contents whatever the request
 * used, as Triton answers: tritonclient reads outputs only from there (IndexError otherwise), and raw
 * is the one form every datatype has (FP16 has no typed field).
 */
export function encodeInferResponse(response: InferenceResponse): ModelInferResponse {
  return {
    model_name: response.model_name,
    model_version: response.model_version ?? '',
    id: response.id ?? '',
    outputs: response.outputs.map((output) => ({ name: output.name, datatype: output.datatype, shape: output.shape })),
    raw_output_contents: response.outputs.map((output) => encodeBlob(output.datatype, output.data)),
  };
}

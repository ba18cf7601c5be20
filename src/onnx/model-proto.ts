/**
 * A whole ONNX model as an editable message, for the commands that rewrite a graph (quantize):
 * decode, change nodes and initializers in place, encode. Field names are protobufjs's camelCase
 * of onnx.proto; new nodes and tensors can be plain objects of the same shape.
 */
import { readFile, writeFile } from 'node:fs/promises';
import protobuf, { type Long } from 'protobufjs';
import { ONNX_PROTO } from './onnx-schema.js';

export interface AttributeMessage {
  name: string;
  type?: number;
  f?: number;
  i?: number | Long;
  s?: Uint8Array;
  ints?: Array<number | Long>;
  floats?: number[];
  t?: TensorProtoMessage | null;
}

export interface NodeProtoMessage {
  name: string;
  opType: string;
  domain: string;
  input: string[];
  output: string[];
  attribute: AttributeMessage[];
}

export interface TensorProtoMessage {
  name: string;
  dims: Array<number | Long>;
  dataType: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: Array<number | Long>;
  doubleData?: number[];
  dataLocation?: number;
}

export interface ValueInfoMessage {
  name: string;
  type?: unknown;
}

export interface GraphProtoMessage {
  name: string;
  node: NodeProtoMessage[];
  initializer: TensorProtoMessage[];
  input: ValueInfoMessage[];
  output: ValueInfoMessage[];
  valueInfo: ValueInfoMessage[];
}

export interface ModelProtoMessage {
  irVersion: number | Long;
  opsetImport: { domain: string; version: number | Long }[];
  graph: GraphProtoMessage;
  metadataProps: { key: string; value: string }[];
}

const ModelProto = protobuf.parse(ONNX_PROTO).root.lookupType('onnx.ModelProto');

/** ONNX TensorProto.DataType codes used when writing quantized graphs. */
export const ONNX_FLOAT = 1;
export const ONNX_UINT8 = 2;
export const ONNX_INT8 = 3;
export const ONNX_INT32 = 6;
export const ONNX_INT64 = 7;
export const ONNX_DOUBLE = 11;

const ATTRIBUTE_INT = 2;
const ATTRIBUTE_FLOAT = 1;
const ATTRIBUTE_INTS = 7;

export async function readModelProto(path: string): Promise<ModelProtoMessage> {
  const bytes = await readFile(path);
  let model: ModelProtoMessage;
  try {
    model = ModelProto.decode(bytes) as unknown as ModelProtoMessage;
  } catch (error) {
    throw new Error(`not an ONNX model: ${path} (protobuf parse failed: ${(error as Error).message})`, {
      cause: error,
    });
  }
  if (!model.graph) throw new Error(`not an ONNX model: ${path} (no graph; expected a serialized ONNX ModelProto)`);
  if (model.graph.initializer.some((tensor) => tensor.dataLocation === 1)) {
    throw new Error(`${path} keeps weights in external data files; onnx-serve rewrites only self-contained models`);
  }
  return model;
}

export function encodeModelProto(model: ModelProtoMessage): Uint8Array {
  return ModelProto.encode(model as unknown as protobuf.Message).finish();
}

export async function writeModelProto(path: string, model: ModelProtoMessage): Promise<void> {
  await writeFile(path, encodeModelProto(model));
}

/** A deep copy (decode of the encoding), so that one read can feed several rewrites. */
export function cloneModelProto(model: ModelProtoMessage): ModelProtoMessage {
  return ModelProto.decode(encodeModelProto(model)) as unknown as ModelProtoMessage;
}

/** The version of the default ('' / ai.onnx) operator set the model imports. */
export function defaultOpset(model: ModelProtoMessage): number {
  const entry = model.opsetImport.find((opset) => opset.domain === '' || opset.domain === 'ai.onnx');
  return entry === undefined ? 0 : Number(entry.version);
}

export function toInt(value: number | Long | undefined): number {
  return value === undefined ? 0 : Number(value);
}

/** Float values of a FLOAT or DOUBLE tensor (raw_data or the typed field); undefined for other types. */
export function floatValuesOf(tensor: TensorProtoMessage): Float32Array | undefined {
  const count = tensor.dims.reduce<number>((product, dim) => product * toInt(dim), 1);
  if (tensor.dataType === ONNX_FLOAT) {
    if (tensor.rawData && tensor.rawData.length > 0) {
      const copy = new Uint8Array(tensor.rawData); // aligned for the Float32Array view
      return new Float32Array(copy.buffer, 0, count);
    }
    return Float32Array.from(tensor.floatData ?? []);
  }
  if (tensor.dataType === ONNX_DOUBLE) {
    if (tensor.rawData && tensor.rawData.length > 0) {
      return Float32Array.from(new Float64Array(new Uint8Array(tensor.rawData).buffer, 0, count));
    }
    return Float32Array.from(tensor.doubleData ?? []);
  }
  return undefined;
}

/** Integer values of an INT64/INT32 tensor (shape and axes constants). */
export function intValuesOf(tensor: TensorProtoMessage): number[] | undefined {
  if (tensor.dataType === ONNX_INT64) {
    if (tensor.rawData && tensor.rawData.length > 0) {
      return Array.from(new BigInt64Array(new Uint8Array(tensor.rawData).buffer), Number);
    }
    return (tensor.int64Data ?? []).map(toInt);
  }
  if (tensor.dataType === ONNX_INT32) {
    if (tensor.rawData && tensor.rawData.length > 0)
      return Array.from(new Int32Array(new Uint8Array(tensor.rawData).buffer));
    return tensor.int32Data ?? [];
  }
  return undefined;
}

export function shapeOfTensor(tensor: TensorProtoMessage): number[] {
  return tensor.dims.map(toInt);
}

/** A tensor stored as raw_data. */
export function makeTensor(
  name: string,
  dataType: number,
  dims: number[],
  data: Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array,
): TensorProtoMessage {
  return { name, dataType, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export function makeNode(
  opType: string,
  input: string[],
  output: string[],
  name: string,
  options: { domain?: string; ints?: Record<string, number>; floats?: Record<string, number> } = {},
): NodeProtoMessage {
  return {
    name,
    opType,
    domain: options.domain ?? '',
    input,
    output,
    attribute: [
      ...Object.entries(options.ints ?? {}).map(([key, i]) => ({ name: key, type: ATTRIBUTE_INT, i })),
      ...Object.entries(options.floats ?? {}).map(([key, f]) => ({ name: key, type: ATTRIBUTE_FLOAT, f })),
    ],
  };
}

export function intAttribute(node: NodeProtoMessage, name: string, fallback: number): number {
  const attribute = node.attribute.find((a) => a.name === name);
  return attribute === undefined ? fallback : toInt(attribute.i);
}

export function floatAttribute(node: NodeProtoMessage, name: string): number | undefined {
  return node.attribute.find((a) => a.name === name)?.f;
}

export function intsAttribute(node: NodeProtoMessage, name: string): number[] | undefined {
  const attribute = node.attribute.find((a) => a.name === name && a.type === ATTRIBUTE_INTS);
  return attribute?.ints?.map(toInt);
}

/** Tensors whose value is fixed in the file: initializers and the outputs of Constant nodes. */
export function constantTensors(graph: GraphProtoMessage): Map<string, TensorProtoMessage> {
  const constants = new Map<string, TensorProtoMessage>();
  for (const tensor of graph.initializer) constants.set(tensor.name, tensor);
  for (const node of graph.node) {
    if (node.opType !== 'Constant' || (node.domain !== '' && node.domain !== 'ai.onnx')) continue;
    const value = node.attribute.find((a) => a.name === 'value')?.t;
    if (value) constants.set(node.output[0], value);
  }
  return constants;
}

/**
 * Drops initializers and Constant nodes nothing reads any more (after a rewrite replaced the float
 * weights by quantized ones), so the file does not carry both.
 */
export function removeUnusedConstants(graph: GraphProtoMessage): void {
  const read = new Set<string>(graph.output.map((output) => output.name));
  for (const node of graph.node) for (const input of node.input) read.add(input);
  graph.node = graph.node.filter((node) => node.opType !== 'Constant' || node.output.some((name) => read.has(name)));
  const removed = new Set(graph.initializer.filter((tensor) => !read.has(tensor.name)).map((tensor) => tensor.name));
  graph.initializer = graph.initializer.filter((tensor) => !removed.has(tensor.name));
  // Old exporters list initializers among the graph inputs too.
  graph.input = graph.input.filter((input) => !removed.has(input.name));
}

/** Clip's bound: an attribute before opset 11, the second or third input after (absent: none). */
export function clipBound(
  node: NodeProtoMessage,
  constants: Map<string, TensorProtoMessage>,
  bound: 'min' | 'max',
): number | undefined {
  const attribute = floatAttribute(node, bound);
  if (attribute !== undefined) return attribute;
  const input = node.input[bound === 'min' ? 1 : 2];
  if (input === undefined || input === '') return undefined;
  const tensor = constants.get(input);
  return tensor === undefined ? undefined : floatValuesOf(tensor)?.[0];
}

/**
 * Reads ONNX protobuf files: a model's description (ModelInfo, for `inspect` and the model
 * repository) and single TensorProto messages (the input_K.pb / output_K.pb of ONNX test data sets).
 */
import { readFile } from 'node:fs/promises';
import protobuf, { type Long } from 'protobufjs';

import { DATATYPES, elementCount, type Datatype, type Tensor, type TensorData } from '../protocol/datatypes.js';
import { ONNX_PROTO } from './onnx-schema.js';

/** A dimension: a size, a symbolic dim_param, or null where the model leaves it unnamed and unknown. */
export type Dim = number | string | null;

export interface ValueInfo {
  name: string;
  /**
   * ONNX element type name ('FLOAT', 'INT64', ...) for tensors; for other values a type expression
   * such as 'sequence(tensor(FLOAT))' or 'map(INT64, tensor(FLOAT))'.
   */
  elemType: string;
  /** The Open Inference Protocol datatype, or null where the protocol has none (or not a tensor). */
  datatype: Datatype | null;
  /** null where the rank itself is unknown (no shape in the model), which differs from a scalar []. */
  shape: Dim[] | null;
}

export interface ModelInfo {
  path: string;
  fileSize: number;
  irVersion: number;
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  /** The default domain '' is reported as 'ai.onnx'. */
  opsetImports: { domain: string; version: number }[];
  metadataProps: Record<string, string>;
  /** Graph inputs that are not initializers: what a client has to feed. */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /**
   * Elements of the weights: initializers and Constant node values (paddle2onnx, for one, exports
   * all weights as Constant nodes), in subgraphs too; of sparse ones, the stored values.
   */
  parameterCount: number;
  /** Bytes those weights take as stored elements (sparse ones: values plus indices). */
  parameterBytes: number;
  /** Nodes in the main graph and in every subgraph of If/Loop/Scan. */
  nodeCount: number;
  /** Operators by use, most used first; 'domain::Op' outside the default domain. */
  operatorHistogram: { op: string; count: number }[];
  /** Whether some weight keeps its data in a file next to the model (data_location EXTERNAL). */
  externalData: boolean;
}

/** A TensorProto's content in the server's own tensor form. */
export interface NamedTensor extends Tensor {
  name: string;
}

// Shapes of the decoded protobufjs messages, only the fields read here (camelCase, as protobufjs
// names them). int64 fields arrive as Long objects because protobufjs finds the `long` package.
type Int64 = number | Long;

interface StringStringEntry {
  key: string;
  value: string;
}

interface TensorMessage {
  dims: Int64[];
  dataType: number;
  floatData: number[];
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: Int64[];
  name: string;
  rawData: Uint8Array;
  dataLocation: number;
  doubleData: number[];
  uint64Data: Int64[];
}

interface SparseTensorMessage {
  values: TensorMessage | null;
  indices: TensorMessage | null;
}

interface ShapeMessage {
  dim: { value?: 'dimValue' | 'dimParam'; dimValue: Int64; dimParam: string }[];
}

interface TypeMessage {
  value?: 'tensorType' | 'sequenceType' | 'mapType' | 'optionalType' | 'sparseTensorType';
  tensorType: { elemType: number; shape: ShapeMessage | null } | null;
  sequenceType: { elemType: TypeMessage | null } | null;
  mapType: { keyType: number; valueType: TypeMessage | null } | null;
  optionalType: { elemType: TypeMessage | null } | null;
  sparseTensorType: { elemType: number; shape: ShapeMessage | null } | null;
}

interface ValueInfoMessage {
  name: string;
  type: TypeMessage | null;
}

interface NodeMessage {
  opType: string;
  domain: string;
  attribute: {
    t: TensorMessage | null;
    sparseTensor: SparseTensorMessage | null;
    g: GraphMessage | null;
    graphs: GraphMessage[];
  }[];
}

interface GraphMessage {
  node: NodeMessage[];
  initializer: TensorMessage[];
  sparseInitializer: SparseTensorMessage[];
  input: ValueInfoMessage[];
  output: ValueInfoMessage[];
}

interface ModelMessage {
  irVersion: Int64;
  opsetImport: { domain: string; version: Int64 }[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: Int64;
  docString: string;
  graph: GraphMessage | null;
  metadataProps: StringStringEntry[];
}

const root = protobuf.parse(ONNX_PROTO).root;
const ModelProto = root.lookupType('onnx.ModelProto');
const TensorProto = root.lookupType('onnx.TensorProto');
const ONNX_TYPE_NAMES = root.lookupEnum('onnx.TensorProto.DataType').valuesById;

const ONNX_STRING = 8;
const DATA_LOCATION_EXTERNAL = 1;

/** ONNX TensorProto.DataType per protocol datatype. */
export const ONNX_TYPE_OF: Readonly<Record<Datatype, number>> = {
  FP32: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  BYTES: ONNX_STRING,
  BOOL: 9,
  FP16: 10,
  FP64: 11,
  UINT32: 12,
  UINT64: 13,
};

const DATATYPE_OF_ONNX_TYPE = new Map<number, Datatype>(
  (Object.keys(ONNX_TYPE_OF) as Datatype[]).map((datatype) => [ONNX_TYPE_OF[datatype], datatype]),
);

/** Bits per element of every fixed-width ONNX type, the ones the protocol cannot carry included. */
// prettier-ignore
const ONNX_TYPE_BITS: Readonly<Record<number, number>> = {
  1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64,
  14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2,
};

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

export async function readModelInfo(path: string): Promise<ModelInfo> {
  const bytes = await readModelFile(path);
  const model = decodeModel(path, bytes);
  const graph = model.graph;

  const initializerNames = new Set<string>(graph.initializer.map((tensor) => tensor.name));
  for (const sparse of graph.sparseInitializer) if (sparse.values) initializerNames.add(sparse.values.name);

  let parameterCount = 0;
  let parameterBytes = 0;
  let nodeCount = 0;
  let externalData = false;
  const operators = new Map<string, number>();
  for (const subgraph of graphsWithin(graph)) {
    for (const { values, indices } of weightsOf(subgraph)) {
      parameterCount += elementCount(shapeOf(values));
      parameterBytes += tensorBytes(values) + (indices ? tensorBytes(indices) : 0);
      externalData ||= [values, indices].some((tensor) => tensor?.dataLocation === DATA_LOCATION_EXTERNAL);
    }
    nodeCount += subgraph.node.length;
    for (const node of subgraph.node) {
      const op = isDefaultDomain(node.domain) ? node.opType : `${node.domain}::${node.opType}`;
      operators.set(op, (operators.get(op) ?? 0) + 1);
    }
  }

  return {
    path,
    fileSize: bytes.byteLength,
    irVersion: toNumber(model.irVersion),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: toNumber(model.modelVersion),
    docString: model.docString,
    opsetImports: model.opsetImport.map((opset) => ({
      domain: opset.domain === '' ? 'ai.onnx' : opset.domain,
      version: toNumber(opset.version),
    })),
    metadataProps: Object.fromEntries(model.metadataProps.map((entry) => [entry.key, entry.value])),
    inputs: graph.input.filter((input) => !initializerNames.has(input.name)).map(describeValue),
    outputs: graph.output.map(describeValue),
    parameterCount,
    parameterBytes,
    nodeCount,
    operatorHistogram: [...operators]
      .map(([op, count]) => ({ op, count }))
      .sort((a, b) => b.count - a.count || (a.op < b.op ? -1 : a.op > b.op ? 1 : 0)),
    externalData,
  };
}

/** Decodes one serialized TensorProto; throws for types the protocol lacks and for external data. */
export function readTensorProto(bytes: Uint8Array): NamedTensor {
  let message: TensorMessage;
  try {
    message = TensorProto.decode(bytes) as unknown as TensorMessage;
  } catch (error) {
    throw new Error(`not an ONNX TensorProto (protobuf parse failed: ${(error as Error).message})`, { cause: error });
  }
  const label = `TensorProto "${message.name}"`;
  const datatype = DATATYPE_OF_ONNX_TYPE.get(message.dataType);
  if (datatype === undefined) {
    throw new Error(`${label} has ONNX data type ${onnxTypeName(message.dataType)}, which onnx-serve cannot carry`);
  }
  if (message.dataLocation === DATA_LOCATION_EXTERNAL) {
    throw new Error(`${label} keeps its data in an external file; expected the data inside the message`);
  }
  const shape = shapeOf(message);
  const count = elementCount(shape);
  const data = message.rawData.length > 0 ? fromRawData(message, datatype, count) : fromTypedField(message, datatype);
  if (data.length !== count) {
    throw new Error(`${label} of shape [${shape.join(', ')}] holds ${data.length} elements, expected ${count}`);
  }
  return { name: message.name, datatype, shape, data };
}

/** Encodes a tensor as a TensorProto: raw_data (little-endian) for numbers, string_data for BYTES. */
export function writeTensorProto(name: string, tensor: Tensor): Uint8Array {
  const { datatype, shape, data } = tensor;
  const count = elementCount(shape);
  if (data.length !== count) {
    throw new Error(`tensor "${name}" of shape [${shape.join(', ')}] has ${data.length} elements, expected ${count}`);
  }
  const message: Record<string, unknown> = { name, dims: shape, dataType: ONNX_TYPE_OF[datatype] };
  if (Array.isArray(data)) {
    message.stringData = data.map((text) => utf8Encoder.encode(text));
  } else {
    if (data.byteLength !== count * DATATYPES[datatype].byteSize) {
      throw new Error(`tensor "${name}": ${data.constructor.name} does not hold ${datatype} elements`);
    }
    message.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  return TensorProto.encode(TensorProto.create(message)).finish();
}

async function readModelFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    throw new Error(`cannot read ONNX model file ${path}: ${reason}`, { cause: error });
  }
}

function decodeModel(path: string, bytes: Uint8Array): ModelMessage & { graph: GraphMessage } {
  let model: ModelMessage;
  try {
    model = ModelProto.decode(bytes) as unknown as ModelMessage;
  } catch (error) {
    throw new Error(`not an ONNX model: ${path} (protobuf parse failed: ${(error as Error).message})`, {
      cause: error,
    });
  }
  // Protobuf has no magic number: many byte strings (an empty file, for one) decode without error.
  if (model.graph === null || toNumber(model.irVersion) <= 0) {
    throw new Error(`not an ONNX model: ${path} (no graph or IR version; expected a serialized ONNX ModelProto)`);
  }
  return model as ModelMessage & { graph: GraphMessage };
}

/** The graph and, depth first, every graph held in a node attribute (If branches, Loop and Scan bodies). */
function* graphsWithin(graph: GraphMessage): Generator<GraphMessage> {
  yield graph;
  for (const node of graph.node) {
    for (const attribute of node.attribute) {
      if (attribute.g) yield* graphsWithin(attribute.g);
      for (const subgraph of attribute.graphs) yield* graphsWithin(subgraph);
    }
  }
}

/** One graph's own weights, dense ones with indices null. */
function* weightsOf(graph: GraphMessage): Generator<{ values: TensorMessage; indices: TensorMessage | null }> {
  for (const tensor of graph.initializer) yield { values: tensor, indices: null };
  const sparse = [...graph.sparseInitializer];
  for (const node of graph.node) {
    if (node.opType !== 'Constant' || !isDefaultDomain(node.domain)) continue;
    for (const attribute of node.attribute) {
      if (attribute.t) yield { values: attribute.t, indices: null };
      if (attribute.sparseTensor) sparse.push(attribute.sparseTensor);
    }
  }
  for (const { values, indices } of sparse) if (values) yield { values, indices };
}

function isDefaultDomain(domain: string): boolean {
  return domain === '' || domain === 'ai.onnx';
}

function describeValue({ name, type }: ValueInfoMessage): ValueInfo {
  if (type?.value === 'tensorType') {
    const { elemType, shape } = type.tensorType!;
    const datatype = DATATYPE_OF_ONNX_TYPE.get(elemType) ?? null;
    return { name, elemType: onnxTypeName(elemType), datatype, shape: dimsOf(shape) };
  }
  const shape = type?.value === 'sparseTensorType' ? dimsOf(type.sparseTensorType!.shape) : null;
  return { name, elemType: typeExpression(type), datatype: null, shape };
}

function typeExpression(type: TypeMessage | null): string {
  switch (type?.value) {
    case 'tensorType':
      return `tensor(${onnxTypeName(type.tensorType!.elemType)})`;
    case 'sparseTensorType':
      return `sparse_tensor(${onnxTypeName(type.sparseTensorType!.elemType)})`;
    case 'sequenceType':
      return `sequence(${typeExpression(type.sequenceType!.elemType)})`;
    case 'optionalType':
      return `optional(${typeExpression(type.optionalType!.elemType)})`;
    case 'mapType':
      return `map(${onnxTypeName(type.mapType!.keyType)}, ${typeExpression(type.mapType!.valueType)})`;
    default:
      return 'UNDEFINED';
  }
}

function dimsOf(shape: ShapeMessage | null): Dim[] | null {
  if (!shape) return null;
  return shape.dim.map((dim) => {
    if (dim.value === 'dimValue') return toSafeInteger(dim.dimValue, 'dimension');
    if (dim.value === 'dimParam') return dim.dimParam;
    return null;
  });
}

function onnxTypeName(code: number): string {
  return ONNX_TYPE_NAMES[code] ?? `UNKNOWN(${code})`;
}

function shapeOf(tensor: TensorMessage): number[] {
  return tensor.dims.map((dim) => toSafeInteger(dim, `dimension of tensor "${tensor.name}"`));
}

function tensorBytes(tensor: TensorMessage): number {
  if (tensor.dataType === ONNX_STRING) return tensor.stringData.reduce((sum, text) => sum + text.length, 0);
  const bits = ONNX_TYPE_BITS[tensor.dataType];
  return bits === undefined ? tensor.rawData.length : Math.ceil((elementCount(shapeOf(tensor)) * bits) / 8);
}

function fromRawData(message: TensorMessage, datatype: Datatype, count: number): TensorData {
  const { byteSize } = DATATYPES[datatype];
  if (datatype === 'BYTES' || message.rawData.length !== count * byteSize) {
    throw new Error(
      `TensorProto "${message.name}" has ${message.rawData.length} bytes of raw_data, expected ${count} ${datatype} elements of ${byteSize} bytes`,
    );
  }
  // Copying into the fresh (hence aligned) buffer of a new typed array also detaches the tensor
  // from the protobuf input. onnxruntime-node only ships for little-endian hosts, so the bytes
  // map onto the typed array as they are.
  const data = DATATYPES[datatype].create(count) as Exclude<TensorData, string[]>;
  new Uint8Array(data.buffer).set(message.rawData);
  return data;
}

function fromTypedField(message: TensorMessage, datatype: Datatype): TensorData {
  switch (datatype) {
    case 'BYTES':
      return message.stringData.map((bytes) => utf8Decoder.decode(bytes));
    case 'FP32':
      return Float32Array.from(message.floatData);
    case 'FP64':
      return Float64Array.from(message.doubleData);
    case 'INT64':
      return BigInt64Array.from(message.int64Data, (value) => BigInt.asIntN(64, toBigInt(value)));
    case 'UINT64':
      return BigUint64Array.from(message.uint64Data, toBigInt);
    case 'UINT32':
      return Uint32Array.from(message.uint64Data, (value) => Number(toBigInt(value)));
    default: {
      // int32_data carries all narrower types, FP16 as its bit pattern; set() truncates each value.
      const data = DATATYPES[datatype].create(message.int32Data.length) as Exclude<
        TensorData,
        string[] | BigInt64Array | BigUint64Array
      >;
      data.set(message.int32Data);
      return data;
    }
  }
}

/** The 64 bits of an int64/uint64 field as an unsigned bigint; callers reinterpret signed ones. */
function toBigInt(value: Int64): bigint {
  if (typeof value === 'number') return BigInt.asUintN(64, BigInt(value));
  return (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
}

function toNumber(value: Int64): number {
  return Number(BigInt.asIntN(64, toBigInt(value)));
}

function toSafeInteger(value: Int64, what: string): number {
  const number = toNumber(value);
  if (!Number.isSafeInteger(number)) throw new Error(`${what} ${number} is beyond the range onnx-serve handles`);
  return number;
}

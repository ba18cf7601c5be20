/**
 * Tiny ONNX models written from TypeScript (protobufjs over onnx-serve's own ONNX schema), so tests
 * can serve a model of any datatype or shape behaviour without Python or files in the repository.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import protobuf from 'protobufjs';
import type { Datatype } from '../../src/protocol/datatypes.js';
import { ONNX_TYPE_OF } from '../../src/onnx/model-file.js';
import { ONNX_PROTO } from '../../src/onnx/onnx-schema.js';

const ModelProto = protobuf.parse(ONNX_PROTO).root.lookupType('onnx.ModelProto');

/** A tensor of a graph: its name, datatype and dims (a number, or a name for a dynamic dimension). */
export interface GraphValue {
  name: string;
  datatype: Datatype;
  dims: Array<number | string>;
}

export interface GraphNode {
  op: string;
  inputs: string[];
  outputs: string[];
  /** Integer-list attributes, e.g. {perm: [1, 0]} for Transpose. */
  ints?: Record<string, number[]>;
  /** Integer attributes, e.g. {to: 7} for Cast. */
  int?: Record<string, number>;
  /** FP32 tensor attributes of one dimension, e.g. {value: [1.5, 2.5]} for Constant. */
  floats?: Record<string, number[]>;
}

function valueInfo(value: GraphValue) {
  return {
    name: value.name,
    type: {
      tensorType: {
        elemType: ONNX_TYPE_OF[value.datatype],
        shape: { dim: value.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** The bytes of a model with one graph of standard-domain nodes (opset 17). */
export function buildModel(inputs: GraphValue[], outputs: GraphValue[], nodes: GraphNode[]): Uint8Array {
  const message = ModelProto.fromObject({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'onnx-serve tests',
    graph: {
      name: 'test',
      node: nodes.map((node, index) => ({
        name: `${node.op}_${index}`,
        opType: node.op,
        input: node.inputs,
        output: node.outputs,
        attribute: [
          ...Object.entries(node.int ?? {}).map(([name, i]) => ({ name, type: 2, i })),
          ...Object.entries(node.ints ?? {}).map(([name, ints]) => ({ name, type: 7, ints })),
          // type 4 = TENSOR; dataType 1 = FLOAT.
          ...Object.entries(node.floats ?? {}).map(([name, floatData]) => ({
            name,
            type: 4,
            t: { dims: [floatData.length], dataType: 1, floatData },
          })),
        ],
      })),
      input: inputs.map(valueInfo),
      output: outputs.map(valueInfo),
    },
  });
  return ModelProto.encode(message).finish();
}

/** Every datatype through Identity: input `in_<DT>` → output `out_<DT>`, shape [batch, n]. */
export function identityModelForEveryDatatype(datatypes: readonly Datatype[]): Uint8Array {
  const dims = ['batch', 'n'];
  return buildModel(
    datatypes.map((datatype) => ({ name: `in_${datatype}`, datatype, dims })),
    datatypes.map((datatype) => ({ name: `out_${datatype}`, datatype, dims })),
    datatypes.map((datatype) => ({ op: 'Identity', inputs: [`in_${datatype}`], outputs: [`out_${datatype}`] })),
  );
}

export interface PassThrough {
  input: string;
  output: string;
  datatype: Datatype;
  shape: Array<number | string>;
  /** Cast the input to this type on the way out; by default the output is the input (Identity). */
  castTo?: Datatype;
}

/** One Identity (or Cast) node per pass-through, each input straight to its output. */
export function passThroughModel(tensors: PassThrough[]): Uint8Array {
  return buildModel(
    tensors.map((t) => ({ name: t.input, datatype: t.datatype, dims: t.shape })),
    tensors.map((t) => ({ name: t.output, datatype: t.castTo ?? t.datatype, dims: t.shape })),
    tensors.map((t) =>
      t.castTo === undefined
        ? { op: 'Identity', inputs: [t.input], outputs: [t.output] }
        : { op: 'Cast', inputs: [t.input], outputs: [t.output], int: { to: ONNX_TYPE_OF[t.castTo] } },
    ),
  );
}

export async function writePassThroughModel(file: string, tensors: PassThrough[]): Promise<void> {
  await writeFile(file, passThroughModel(tensors));
}

/**
 * Writes a repository entry: <repository>/<name>/1/model.onnx when `model` is given (else the
 * config.yaml must name a `source`), and config.yaml when one is given.
 */
export async function writeRepositoryModel(
  repository: string,
  name: string,
  model: Uint8Array | undefined,
  configYaml?: string,
): Promise<void> {
  await mkdir(path.join(repository, name), { recursive: true });
  if (model !== undefined) {
    await mkdir(path.join(repository, name, '1'));
    await writeFile(path.join(repository, name, '1', 'model.onnx'), model);
  }
  if (configYaml !== undefined) await writeFile(path.join(repository, name, 'config.yaml'), configYaml);
}

/**
 * <repository>/<name>: one Identity per datatype, input `x_<datatype>` → output `y_<datatype>`
 * (datatype in lower case), shape [batch, n]; one instance of one thread, one warmup run.
 */
export async function writeIdentityModel(
  repository: string,
  name: string,
  datatypes: readonly Datatype[],
): Promise<void> {
  const model = passThroughModel(
    datatypes.map((datatype) => ({
      input: `x_${datatype.toLowerCase()}`,
      output: `y_${datatype.toLowerCase()}`,
      datatype,
      shape: ['batch', 'n'],
    })),
  );
  await writeRepositoryModel(
    repository,
    name,
    model,
    'instances: 1\nsession:\n  intra_op_threads: 1\nwarmup:\n  runs: 1\n',
  );
}

/** A model without inputs: one Constant node whose FP32 `values` are the output `y`, shape [values.length]. */
export function constantModel(values: number[]): Uint8Array {
  return buildModel(
    [],
    [{ name: 'y', datatype: 'FP32', dims: [values.length] }],
    [{ op: 'Constant', inputs: [], outputs: ['y'], floats: { value: values } }],
  );
}

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
        attribute: Object.entries(node.ints ?? {}).map(([name, ints]) => ({ name, type: 7, ints })),
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

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

/** Layer widths of mlpModel's default: x [batch, 64] → 256 → 256 → y [batch, 16], ~340 KB of FP32 weights. */
export const MLP_LAYERS = [64, 256, 256, 16] as const;

/** The weights of mlpModel(seed): one [in, out] row-major matrix per layer, deterministic in the seed. */
export function mlpWeights(seed: number, layers: readonly number[] = MLP_LAYERS): Float32Array[] {
  let state = seed + 1;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648 - 0.5;
  };
  return layers.slice(1).map((width, i) => new Float32Array(layers[i] * width).map(random));
}

/**
 * A small multi-layer perceptron: x [batch, layers[0]] → MatMul → Relu → … → MatMul → y [batch, last],
 * weights from mlpWeights(seed) as initializers, so every seed is a different model of the same size.
 */
export function mlpModel(seed: number, layers: readonly number[] = MLP_LAYERS): Uint8Array {
  const weights = mlpWeights(seed, layers);
  const valueInfo = (name: string, width: number) => ({
    name,
    type: { tensorType: { elemType: ONNX_TYPE_OF.FP32, shape: { dim: [{ dimParam: 'batch' }, { dimValue: width }] } } },
  });
  const node = [];
  let last = 'x';
  for (let i = 0; i < weights.length; i++) {
    const final = i === weights.length - 1;
    node.push({ name: `mm${i}`, opType: 'MatMul', input: [last, `w${i}`], output: [final ? 'y' : `mm${i}`] });
    if (!final) node.push({ name: `relu${i}`, opType: 'Relu', input: [`mm${i}`], output: [`h${i}`] });
    last = `h${i}`;
  }
  return ModelProto.encode(
    ModelProto.fromObject({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      producerName: 'onnx-serve tests',
      graph: {
        name: `mlp${seed}`,
        node,
        initializer: weights.map((w, i) => ({
          name: `w${i}`,
          dims: [layers[i], layers[i + 1]],
          dataType: ONNX_TYPE_OF.FP32,
          rawData: new Uint8Array(w.buffer),
        })),
        input: [valueInfo('x', layers[0])],
        output: [valueInfo('y', layers[layers.length - 1])],
      },
    }),
  ).finish();
}

/** What mlpModel(seed) computes for one row `x`, in float64 (compare with a tolerance). */
export function mlpReference(seed: number, x: readonly number[], layers: readonly number[] = MLP_LAYERS): number[] {
  const weights = mlpWeights(seed, layers);
  let h = [...x];
  weights.forEach((w, i) => {
    const out = Array.from({ length: layers[i + 1] }, (_, j) =>
      h.reduce((sum, v, k) => sum + v * w[k * layers[i + 1] + j], 0),
    );
    h = i === weights.length - 1 ? out : out.map((v) => Math.max(0, v));
  });
  return h;
}

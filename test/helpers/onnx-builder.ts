/**
 * Tiny ONNX models built in the test, for datatypes the default OCR models do not have: every
 * input goes through one node (Identity by default, or Cast to another type) to an output. Written
 * with protobufjs and the server's own ONNX schema, so no Python or onnx package is needed.
 */
import protobuf from 'protobufjs';
import { writeFile } from 'node:fs/promises';
import type { Datatype } from '../../src/protocol/datatypes.js';
import { ONNX_TYPE_OF } from '../../src/onnx/model-file.js';
import { ONNX_PROTO } from '../../src/onnx/onnx-schema.js';

const ModelProto = protobuf.parse(ONNX_PROTO).root.lookupType('onnx.ModelProto');

/** A dimension: a fixed size, or the name of a variable one. */
export type BuiltDim = number | string;

export interface PassThrough {
  input: string;
  output: string;
  datatype: Datatype;
  shape: BuiltDim[];
  /** Cast the input to this type on the way out; by default the output is the input (Identity). */
  castTo?: Datatype;
}

function valueInfo(name: string, datatype: Datatype, shape: BuiltDim[]) {
  const dim = shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: ONNX_TYPE_OF[datatype], shape: { dim } } } };
}

/** The bytes of an ONNX model (IR 8, opset 17) made of one Identity or Cast node per pass-through. */
export function passThroughModel(tensors: PassThrough[]): Uint8Array {
  const model = {
    irVersion: 8,
    producerName: 'onnx-serve-test',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'pass_through',
      node: tensors.map((t) =>
        t.castTo === undefined
          ? { opType: 'Identity', input: [t.input], output: [t.output] }
          : {
              opType: 'Cast',
              input: [t.input],
              output: [t.output],
              attribute: [{ name: 'to', type: 2, i: ONNX_TYPE_OF[t.castTo] }],
            },
      ),
      input: tensors.map((t) => valueInfo(t.input, t.datatype, t.shape)),
      output: tensors.map((t) => valueInfo(t.output, t.castTo ?? t.datatype, t.shape)),
    },
  };
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

export async function writePassThroughModel(path: string, tensors: PassThrough[]): Promise<void> {
  await writeFile(path, passThroughModel(tensors));
}

import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import protobuf from 'protobufjs';
import type { Datatype } from '../../src/protocol/datatypes.js';
import { ONNX_TYPE_OF } from '../../src/onnx/model-file.js';
import { ONNX_PROTO } from '../../src/onnx/onnx-schema.js';

const ModelProto = protobuf.parse(ONNX_PROTO).root.lookupType('onnx.ModelProto');

/**
 * An ONNX model of Identity nodes, one per datatype: input `x_<datatype>` is copied to output
 * `y_<datatype>` (datatype in lower case), each of shape [batch, n] with both dims free.
 */
export function identityModel(datatypes: readonly Datatype[]): Uint8Array {
  const tensor = (prefix: string, datatype: Datatype) => ({
    name: `${prefix}_${datatype.toLowerCase()}`,
    type: {
      tensorType: {
        elemType: ONNX_TYPE_OF[datatype],
        shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'n' }] },
      },
    },
  });
  const model = ModelProto.fromObject({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'onnx-serve tests',
    graph: {
      name: 'identity',
      node: datatypes.map((datatype) => ({
        opType: 'Identity',
        input: [`x_${datatype.toLowerCase()}`],
        output: [`y_${datatype.toLowerCase()}`],
        name: `copy_${datatype.toLowerCase()}`,
      })),
      input: datatypes.map((datatype) => tensor('x', datatype)),
      output: datatypes.map((datatype) => tensor('y', datatype)),
    },
  });
  return ModelProto.encode(model).finish();
}

/** Writes `<repository>/<name>/1/model.onnx` (an identity model) with a small config: 1 instance, 1 thread. */
export async function writeIdentityModel(
  repository: string,
  name: string,
  datatypes: readonly Datatype[],
): Promise<void> {
  const modelDir = path.join(repository, name);
  await mkdir(path.join(modelDir, '1'), { recursive: true });
  await writeFile(path.join(modelDir, '1', 'model.onnx'), identityModel(datatypes));
  await writeFile(
    path.join(modelDir, 'config.yaml'),
    'instances: 1\nsession:\n  intra_op_threads: 1\nwarmup:\n  runs: 1\n',
  );
}

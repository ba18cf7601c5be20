/**
 * The smallest model there is (one FP32 Identity), which a worker thread creates and runs once when
 * asked to prime itself: onnxruntime's one-off setup in a process (environment, CPU kernel registry,
 * ~30 MB resident) and a thread's first-session cost then happen before any real model loads, so a
 * memory budget measures models, not that setup.
 */
import { encodeModelProto, ONNX_FLOAT } from '../onnx/model-proto.js';

const tensor = (name: string) => ({
  name,
  type: { tensorType: { elemType: ONNX_FLOAT, shape: { dim: [{ dimValue: 1 }] } } },
});

export function primeModel(): Uint8Array {
  return encodeModelProto({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'onnx-serve prime',
      node: [{ name: 'identity', opType: 'Identity', domain: '', input: ['x'], output: ['y'], attribute: [] }],
      initializer: [],
      input: [tensor('x')],
      output: [tensor('y')],
      valueInfo: [],
    },
    metadataProps: [],
  });
}

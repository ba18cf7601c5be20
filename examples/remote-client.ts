// Call a running onnx-serve (or any Open Inference Protocol server): `onnx-serve serve` first.
import { InferenceClient, InferenceServerError } from 'onnx-serve/client';

const url = process.argv[2] ?? 'http://127.0.0.1:8000';
const client = new InferenceClient(url, { timeoutMs: 30_000, retries: 1 });

console.log('live:', await client.live(), 'ready:', await client.ready());
const server = await client.serverMetadata();
console.log('server:', server.name, 'binary tensors:', server.extensions.includes('binary_tensor_data'));

const x = new Float32Array(2 * 3 * 48 * 192).fill(0.25);
// Big tensors go binary by default; { binary: false } forces JSON.
const result = await client.infer(
  'text-orientation',
  { x: { shape: [2, 3, 48, 192], data: x } },
  { requestId: 'example-1' },
);
for (const [name, output] of Object.entries(result.outputs)) {
  console.log(`output ${name}: ${output.datatype} [${output.shape.join(',')}]`);
}

try {
  await client.infer('no-such-model', { x: { shape: [1], data: new Float32Array(1) } });
} catch (error) {
  if (!(error instanceof InferenceServerError)) throw error;
  console.log(`server said ${error.status}: ${error.message}`);
}

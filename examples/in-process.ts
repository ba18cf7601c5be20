// Run a model inside your own process: no server, inference on worker threads.
import { defaultModelRepository, isServeError, loadRepository } from 'onnx-serve';

const repository = await loadRepository(defaultModelRepository, { models: ['text-orientation'] });
try {
  const model = repository.model('text-orientation');
  console.log('inputs:', JSON.stringify(model.metadata.inputs));

  // One 48×192 RGB text line, normalised to [-1, 1]: here a flat grey image.
  const x = new Float32Array(1 * 3 * 48 * 192).fill(0);
  const result = await model.infer({ x: { shape: [1, 3, 48, 192], data: x } });
  for (const [name, output] of Object.entries(result.outputs)) {
    console.log(`output ${name}: ${output.datatype} [${output.shape.join(',')}]`);
  }

  // Errors are ServeErrors with a stable code: tell invalid input from overload, timeout or unavailability.
  try {
    await model.infer({ x: { shape: [1, 4, 48, 192], data: new Float32Array(4 * 48 * 192) } });
  } catch (error) {
    if (!isServeError(error, 'INVALID_ARGUMENT')) throw error;
    console.log(`refused (${error.code}): ${error.message}`);
  }
} finally {
  await repository.close(); // stops the worker threads: the process can exit
}

// Mount the Open Inference Protocol into your own fastify app, beside your own routes.
import Fastify from 'fastify';
import { defaultModelRepository, loadRepository } from 'onnx-serve';
import { InferenceClient } from 'onnx-serve/client';
import { onnxServe } from 'onnx-serve/fastify';

const repository = await loadRepository(defaultModelRepository, { models: ['text-orientation'] });
const app = Fastify();

// Your own JSON route, which can also call a model directly.
app.post('/orientation', async (request) => {
  const { value } = request.body as { value: number };
  const result = await repository.model('text-orientation').infer({
    x: { shape: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192).fill(value) },
  });
  return { shape: Object.values(result.outputs)[0].shape };
});

// The protocol's routes under /ml: /ml/v2/health/ready, /ml/v2/models/text-orientation/infer, …
await app.register(onnxServe, { prefix: '/ml', repository });

const url = await app.listen({ host: '127.0.0.1', port: 0 });
try {
  const own = await fetch(`${url}/orientation`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ value: 0.5 }),
  });
  console.log('own route:', JSON.stringify(await own.json()));

  const client = new InferenceClient(`${url}/ml`);
  console.log('ready:', await client.ready());
  const metadata = await client.modelMetadata('text-orientation');
  console.log('mounted model:', metadata.name, metadata.platform);
} finally {
  await app.close();
  await repository.close(); // the repository is yours to close
}

/**
 * The server users write from the onnxruntime-node README: fastify, JSON in and out, session.run on
 * the main thread. The side-by-side benchmark's baseline; it speaks enough of the Open Inference
 * Protocol's JSON for the same request bodies to work. Usage: naive-server.ts PORT NAME=FILE...
 */
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';

const [port, ...models] = process.argv.slice(2);
const sessions = new Map<string, ort.InferenceSession>();
for (const entry of models) {
  const [name, file] = entry.split('=');
  sessions.set(name, await ort.InferenceSession.create(file));
}

interface Body {
  inputs: Array<{ name: string; shape: number[]; data: number[] }>;
}

const app = Fastify({ bodyLimit: 64 * 1024 * 1024 });
app.get('/ready', async () => ({ ready: true }));
app.post<{ Params: { model: string }; Body: Body }>('/v2/models/:model/infer', async (request) => {
  const session = sessions.get(request.params.model)!;
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of request.body.inputs) {
    feeds[input.name] = new ort.Tensor('float32', Float32Array.from(input.data), input.shape);
  }
  const results = await session.run(feeds);
  return {
    model_name: request.params.model,
    outputs: Object.entries(results).map(([name, tensor]) => ({
      name,
      datatype: 'FP32',
      shape: tensor.dims,
      data: Array.from(tensor.data as Float32Array),
    })),
  };
});
await app.listen({ host: '127.0.0.1', port: Number(port) });

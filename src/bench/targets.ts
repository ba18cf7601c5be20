/**
 * What `bench` sends requests to: a server over HTTP (binary or JSON bodies, keep-alive sockets),
 * or the inference path in this process (runInference: scheduler and workers, no HTTP).
 */
import http from 'node:http';
import type { Datatype, NamedTensor } from '../protocol/datatypes.js';
import { syntheticData } from '../protocol/synthetic-data.js';
import type { TensorHeader } from '../protocol/json-codec.js';
import { runInference, type ReadyModel } from '../core/inference.js';
import type { SendOne } from './load-generator.js';

/** Input shapes with -1 filled in: the batch from `items`, other dims from `overrides` or 32. */
export function concreteShapes(
  inputs: ReadonlyArray<{ name: string; shape: number[] }>,
  items: number,
  overrides: Record<string, number[]>,
): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const input of inputs) {
    const given = overrides[input.name];
    shapes[input.name] = given ?? input.shape.map((d, i) => (d >= 0 ? d : i === 0 ? items : 32));
  }
  return shapes;
}

/** Deterministic inputs of the right datatype (same data every run, the data warmup uses). */
export function syntheticInputs(
  inputs: ReadonlyArray<{ name: string; datatype: Datatype }>,
  shapes: Record<string, number[]>,
): NamedTensor[] {
  return inputs.map(({ name, datatype }) => ({
    name,
    datatype,
    shape: shapes[name],
    data: syntheticData(datatype, shapes[name]),
  }));
}

/** The server's timings from the response's `parameters`, read from its start without parsing the tensors. */
function timingsOf(head: string): { serverQueueMs?: number; serverComputeMs?: number; batchSize?: number } {
  const match = /"parameters":(\{[^{}]*\})/.exec(head);
  if (match === null) return {};
  const parameters = JSON.parse(match[1]) as Record<string, unknown>;
  const out: { serverQueueMs?: number; serverComputeMs?: number; batchSize?: number } = {};
  if (typeof parameters.queue_ms === 'number') out.serverQueueMs = parameters.queue_ms;
  if (typeof parameters.compute_ms === 'number') out.serverComputeMs = parameters.compute_ms;
  if (typeof parameters.batch_size === 'number') out.batchSize = parameters.batch_size;
  return out;
}

export interface HttpModel {
  inputs: Array<{ name: string; datatype: Datatype; shape: number[] }>;
}

/** The model's metadata from GET /v2/models/{model}. */
export async function fetchModelMetadata(baseUrl: string, model: string): Promise<HttpModel> {
  const response = await fetch(`${baseUrl}/v2/models/${encodeURIComponent(model)}`);
  const body = (await response.json()) as HttpModel & { error?: string };
  if (response.status !== 200) throw new Error(`GET /v2/models/${model}: ${response.status} ${body.error ?? ''}`);
  return body;
}

/** The same encoded request, again and again, over keep-alive sockets (node:http: lighter on the CPU than fetch). */
export function httpTarget(
  inferUrl: string,
  body: { body: Buffer; headers: Record<string, string> },
  concurrency: number,
): { send: SendOne; close: () => void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL(inferUrl);
  const headers = { ...body.headers, 'content-length': String(body.body.length) };
  const send: SendOne = () =>
    new Promise((resolve, reject) => {
      const request = http.request(
        { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            const head = Buffer.concat(chunks).subarray(0, 1024).toString('latin1');
            if (response.statusCode !== 200) reject(new Error(`HTTP ${response.statusCode}: ${head.slice(0, 300)}`));
            else resolve(timingsOf(head));
          });
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body.body);
    });
  return { send, close: () => agent.destroy() };
}

/** Requests straight into runInference: what the server does per request, minus HTTP and codecs. */
export function inProcessTarget(model: ReadyModel, inputs: NamedTensor[]): SendOne {
  const header = { inputs: inputs.map(({ name, datatype, shape }): TensorHeader => ({ name, datatype, shape })) };
  return async () => {
    // Fresh copies: the worker pool takes ownership of what it sends.
    const { timings } = await runInference(model, header, () =>
      inputs.map((t) => ({ ...t, data: Array.isArray(t.data) ? t.data : t.data.slice() })),
    );
    return { serverQueueMs: timings.queueMs, serverComputeMs: timings.computeMs, batchSize: timings.batchSize };
  };
}

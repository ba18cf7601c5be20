import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  binaryOutputSelector,
  decodeBinaryRequest,
  decodeRawBody,
  encodeBinaryResponse,
  HEADER_LENGTH_HEADER,
  parseHeaderLength,
  type EncodedBody,
} from '../../protocol/binary-extension.js';
import { invalidArgument } from '../../protocol/errors.js';
import type { NamedTensor } from '../../protocol/datatypes.js';
import {
  parseInferenceRequest,
  type DecodedInferenceRequest,
  type InferenceRequestHeader,
  type InferenceResponse,
} from '../../protocol/json-codec.js';
import { decodeJsonInputs } from '../../protocol/json-decode.js';
import { encodeJsonResponse } from '../../protocol/json-encode.js';
import type { ModelRegistry } from '../../repository/model-registry.js';
import { protocolShape } from '../../runtime/signature.js';
import { bufferPool } from '../../runtime/buffer-pool.js';
import { surrenderBuffer } from '../../runtime/worker-pool.js';
import { ownsItsMemory } from '../request-body.js';
import { ClientGone } from '../client-gone.js';
import { feedableDatatype, runInference, type InferenceResult, type ReadyModel } from '../../core/inference.js';
import { checkJsonAnswerSize, DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../../core/request-limits.js';
import { JSON_WORKER_MIN_BODY_BYTES, JSON_WORKER_MIN_OUTPUT_ELEMENTS, JsonCodecPool } from '../json-codec-pool.js';

/** From which sizes on JSON is decoded and printed in a codec worker instead of the main thread. */
export interface JsonWorkerThresholds {
  /** Request bodies of at least this many bytes (JSON only, not the binary extension's header). */
  minBodyBytes: number;
  /** JSON answers with at least this many output elements, all outputs together. */
  minOutputElements: number;
}

export const DEFAULT_JSON_WORKER_THRESHOLDS: JsonWorkerThresholds = {
  minBodyBytes: JSON_WORKER_MIN_BODY_BYTES,
  minOutputElements: JSON_WORKER_MIN_OUTPUT_ELEMENTS,
};

interface InferParams {
  model: string;
  version?: string;
}

export function registerInferRoutes(
  app: FastifyInstance,
  registry: ModelRegistry,
  limits: RequestLimits = DEFAULT_REQUEST_LIMITS,
  jsonWorkers: JsonWorkerThresholds = DEFAULT_JSON_WORKER_THRESHOLDS,
): void {
  // Its threads run as far below the main thread as the inference workers (thread-priority.ts).
  const codec = new JsonCodecPool(undefined, registry.workers.nice);
  app.addHook('onClose', async () => codec.close());
  const infer = async (request: FastifyRequest<{ Params: InferParams }>, reply: FastifyReply) => {
    // A model that loads on demand is loaded here; concurrent requests for it wait for the same load.
    const model = await registry.acquire(request.params.model, request.params.version);
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    if (body.length === 0) {
      throw invalidArgument(
        'request body is empty; expected an inference request (JSON, or binary tensors with Inference-Header-Content-Length)',
      );
    }
    const headerLength = parseHeaderLength(request.headers[HEADER_LENGTH_HEADER], body.length);
    const raw = headerLength === 0;
    let header: InferenceRequestHeader;
    let decodeInputs: () => NamedTensor[];
    if (headerLength === undefined && body.length >= jsonWorkers.minBodyBytes) {
      // The body's memory moves to the codec thread: `body` is empty from here on.
      ({ header, decodeInputs } = await codec.decodeRequest(body, limits));
    } else if (headerLength === undefined) {
      header = parseInferenceRequest(body);
      decodeInputs = () => decodeJsonInputs(header);
    } else {
      const decoded = raw ? decodeRaw(model, body) : decodeBinaryRequest(body, headerLength);
      header = decoded.header;
      // The body is read once: its tensors (views into it) may take it to the worker instead of a copy.
      if (ownsItsMemory(body)) surrenderBuffer(body.buffer);
      decodeInputs = () => decoded.inputs;
    }

    const receivedAt = performance.now() - reply.elapsedTime;
    let result: InferenceResult;
    try {
      result = await runInference(model, header, decodeInputs, {
        requestId: request.id,
        receivedAt,
        signal: new ClientGone(reply.raw),
        limits,
        // Metrics, statistics and the slow-inference log are fed after the answer is handed over (below).
        answerFirst: true,
      });
    } finally {
      // Settled: its tensors were copied into a batch, handed to a worker (the body is then detached,
      // and comes back from there) or never used, so a body from the BufferPool can serve the next one.
      bufferPool.release(body.buffer);
    }
    try {
      return await answer(result.response, raw ? () => true : binaryOutputSelector(header), reply);
    } finally {
      result.publishFinished?.();
    }
  };
  /** Sends the outputs: binary tensors where asked for (raw requests get them all), JSON otherwise. */
  const answer = async (response: InferenceResponse, isBinary: (name: string) => boolean, reply: FastifyReply) => {
    const jsonElements = checkJsonAnswerSize(
      response.outputs.filter((output) => !isBinary(output.name)),
      limits,
    );
    if (response.outputs.some((output) => isBinary(output.name))) {
      const encoded = encodeBinaryResponse(response, isBinary);
      reply.header(HEADER_LENGTH_HEADER, String(encoded.headerLength)).type('application/octet-stream');
      return reply.send(binaryAnswerBody(encoded, reply));
    }
    if (jsonElements >= jsonWorkers.minOutputElements) {
      return reply.type('application/json').send(await codec.encodeResponse(response));
    }
    return reply.type('application/json').send(encodeJsonResponse(response));
  };
  // A full queue answers 503 before the body is read and parsed: overload costs the least it can.
  // Synchronous (a `done` callback, no promise): it runs on every inference request.
  const refuseWhenFull = (
    request: FastifyRequest<{ Params: InferParams }>,
    _reply: FastifyReply,
    done: (error?: Error) => void,
  ) => {
    let full: Error | undefined;
    try {
      full = registry.resolveReady(request.params.model, request.params.version).queue.overload();
    } catch {
      // unknown or unready model: the handler answers with the reason
    }
    done(full);
  };
  // Inference answers alone are compressed on request (src/server/app.ts says why).
  app.post('/v2/models/:model/infer', { onRequest: refuseWhenFull, compress: {} }, infer);
  app.post('/v2/models/:model/versions/:version/infer', { onRequest: refuseWhenFull, compress: {} }, infer);
}

/**
 * Below this, a binary answer is joined into one Buffer: the copy is cheaper than a stream's
 * machinery. From here on its parts are written as they lie (the outputs' own memory), not copied.
 */
const STREAMED_ANSWER_MIN_BYTES = 64 * 1024;

/** A binary answer's body: one Buffer when small, else a stream of its parts with Content-Length set. */
function binaryAnswerBody(encoded: EncodedBody, reply: FastifyReply): Buffer | Readable {
  if (encoded.byteLength < STREAMED_ANSWER_MIN_BYTES) return Buffer.concat(encoded.chunks, encoded.byteLength);
  // A stream has no length of its own: without this header the answer would go chunked.
  reply.header('content-length', String(encoded.byteLength));
  const parts = encoded.chunks.map((chunk) => Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return Readable.from(parts);
}

/** Raw mode: the body is the bytes of the model's only input, as batch 1 (Triton's rule). */
function decodeRaw(model: ReadyModel, body: Buffer): DecodedInferenceRequest {
  const inputs = model.loaded.signature.inputs;
  if (inputs.length !== 1) {
    throw invalidArgument(
      `Inference-Header-Content-Length: 0 (raw body) needs a model with exactly one input; ${model.name} has ${inputs.length}`,
    );
  }
  const spec = inputs[0];
  const datatype = feedableDatatype(spec, model.name);
  const shape = protocolShape(spec.dims);
  if (shape[0] === -1 && shape.filter((d) => d === -1).length > 1) shape[0] = 1;
  const tensor = decodeRawBody(body, { name: spec.name, datatype, shape });
  return {
    header: { inputs: [{ name: tensor.name, datatype: tensor.datatype, shape: tensor.shape }] },
    inputs: [tensor],
  };
}

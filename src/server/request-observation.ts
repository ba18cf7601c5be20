import type { FastifyInstance, FastifyRequest } from 'fastify';
import { failureReason, publishInferenceFinished, wasPublished } from '../observability/inference-events.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import type { ModelVersion } from '../repository/model-version.js';
import { servedError } from './framework-errors.js';

/** Routes whose requests are inferences of the model named in the path. */
const INFERENCE_ROUTE = /^\/v2\/models\/:model(\/versions\/:version)?\/(infer|predict)$/;

/**
 * Request ids and the failures that happen before runInference: every response carries the request
 * id (the client's X-Request-Id, or a generated one), and an inference request refused before it
 * reached the model (bad body, unavailable model, body too large) still counts as a failed inference
 * of that model.
 */
export function registerRequestObservation(app: FastifyInstance, registry: ModelRegistry, bodyLimit: number): void {
  // Synchronous (a `done` callback, no promise): it runs on every request.
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    done();
  });

  app.addHook('onError', async (request, reply, error) => {
    if (wasPublished(error) || !INFERENCE_ROUTE.test(request.routeOptions.url ?? '')) return;
    const model = modelOf(request, registry);
    if (model === undefined) return;
    // Classified as the answer is: a body over the limit or an abandoned upload is the client's doing.
    const served = servedError(error, request, bodyLimit);
    publishInferenceFinished({
      model,
      requestId: request.id,
      ok: false,
      reason: failureReason(served.code),
      error: served.message,
      totalMs: reply.elapsedTime,
      items: 1,
      batchSize: 1,
      started: false,
    });
  });
}

/** The version the request addressed; undefined for an unknown model or version (nothing to label it with). */
function modelOf(request: FastifyRequest, registry: ModelRegistry): ModelVersion | undefined {
  const { model, version } = request.params as { model?: string; version?: string };
  if (model === undefined) return undefined;
  try {
    return registry.resolve(model, version);
  } catch {
    return undefined;
  }
}

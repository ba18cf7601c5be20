import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ModelRegistry } from '../../repository/model-registry.js';
import { predictUploads } from '../../processing/predict.js';
import { uploadsOf } from '../image-uploads.js';

interface PredictParams {
  model: string;
  version?: string;
}

/**
 * POST /v2/models/{model}/predict: photos in, answers out. The body is an image or a multipart form
 * of images; all of them go through the model (or pipeline) as one batch, and the answer has one
 * result per image, in order, with the time each stage took.
 */
export function registerPredictRoutes(
  app: FastifyInstance,
  registry: ModelRegistry,
  options: { maxImagePixels: number },
): void {
  const predict = async (request: FastifyRequest<{ Params: PredictParams }>) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    return predictUploads(
      registry,
      request.params.model,
      request.params.version,
      () => uploadsOf(body, request.headers['content-type']),
      options,
    );
  };
  // Compressed on request, as inference answers are (src/server/app.ts).
  app.post<{ Params: PredictParams }>('/v2/models/:model/predict', { compress: {} }, predict);
  app.post<{ Params: PredictParams }>('/v2/models/:model/versions/:version/predict', { compress: {} }, predict);
}

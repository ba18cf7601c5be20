import type { FastifyInstance, FastifyRequest } from 'fastify';
import { unavailable } from '../../protocol/errors.js';
import type { ModelRegistry } from '../../repository/model-registry.js';
import { decodeImage } from '../../processing/image-decode.js';
import { imageModelOf, noTime, predictImages, timed } from '../../processing/image-model.js';
import { runOcrPipeline } from '../../processing/pipeline.js';
import { uploadsOf } from '../image-uploads.js';
import type { ReadyModel } from '../inference.js';

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
    const started = performance.now();
    const { model: name, version } = request.params;
    const found = registry.resolve(name, version);
    const pipeline = found.spec.config.pipeline;
    if (pipeline !== undefined && found.state !== 'READY') {
      throw unavailable(`pipeline ${found.name} is unavailable: ${found.reason ?? 'its steps are still loading'}`);
    }
    // Check the model before reading the body: a model that cannot take images says so first.
    const model = pipeline === undefined ? imageModelOf(registry.resolveReady(name, version)) : undefined;

    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const uploads = await uploadsOf(body, request.headers['content-type']);
    const timings = noTime();
    const images = await timed(timings, 'decode', () =>
      Promise.all(uploads.map((upload) => decodeImage(upload.bytes, upload.name, options.maxImagePixels))),
    );
    const results =
      model === undefined
        ? await runOcrPipeline(registry, pipeline!, images, timings)
        : await predictImages(model, images, timings);
    return {
      model_name: found.name,
      model_version: String(found.version),
      images: uploads.map((upload, i) => ({ name: upload.name, width: images[i].width, height: images[i].height })),
      results,
      timings_ms: roundAll({ ...timings, total: performance.now() - started }),
    };
  };
  app.post<{ Params: PredictParams }>('/v2/models/:model/predict', predict);
  app.post<{ Params: PredictParams }>('/v2/models/:model/versions/:version/predict', predict);
}

function roundAll(timings: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([stage, ms]) => [stage, Math.round(ms * 100) / 100]));
}

/** What a model's metadata says about /predict, so that clients (the dashboard) can offer an image drop. */
export function predictMetadata(model: Pick<ReadyModel, 'name' | 'spec'>) {
  const { preprocess, postprocess, pipeline } = model.spec.config;
  if (pipeline !== undefined)
    return { predict: { endpoint: `/v2/models/${model.name}/predict`, answers: pipeline.type, pipeline } };
  if (preprocess === undefined || postprocess === undefined) return {};
  return { predict: { endpoint: `/v2/models/${model.name}/predict`, answers: postprocess.type, preprocess } };
}

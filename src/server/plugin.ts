/**
 * onnx-serve/fastify: the Open Inference Protocol routes as a fastify plugin, to mount a model
 * repository into an existing app under a prefix. The standalone server registers the same routes
 * (registerServeRoutes in app.ts), so both answer alike.
 */

import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { registryOf } from '../core/repository-handle.js';
import type { Repository } from '../library/in-process.js';
import { DEFAULT_MAX_IMAGE_PIXELS } from '../processing/image-decode.js';
import { DEFAULT_BODY_LIMIT, registerServeRoutes } from './app.js';
import { serverInfo } from '../core/server-info.js';

export interface OnnxServePluginOptions {
  /** The models to serve, from loadRepository() of `onnx-serve`. */
  repository: Repository;
  /** Largest inference request body in bytes (default 64 MiB), whatever the app's own bodyLimit. */
  bodyLimit?: number;
  /**
   * Triton's strict readiness for `<prefix>/v2/health/ready`: ready only when every model is
   * (default true); otherwise ready once loading is over.
   */
  strictReadiness?: boolean;
  /** Largest image `/predict` decodes, in pixels (width × height; default DEFAULT_MAX_IMAGE_PIXELS). */
  maxImagePixels?: number;
}

/**
 * Mounts `/v2/...` (health, metadata, infer) under the prefix it is registered with:
 * `app.register(onnxServe, { prefix: '/ml', repository })`. Its body parser, error handler and 404
 * answer are encapsulated: the app's own routes keep their JSON parsing and error handling. The
 * repository stays the caller's to close.
 */
export async function onnxServe(app: FastifyInstance, options: OnnxServePluginOptions): Promise<void> {
  await registerServeRoutes(app, {
    registry: registryOf(options.repository),
    log: app.log as Logger,
    info: serverInfo(),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    readiness: { strict: options.strictReadiness ?? true, draining: () => false },
    maxImagePixels: options.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS,
  });
}

export default onnxServe;

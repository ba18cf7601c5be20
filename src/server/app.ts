import fastifyCompress from '@fastify/compress';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ReadinessPolicy } from '../core/readiness.js';
import type { ServerInfo } from '../core/server-info.js';
import { wasPublished } from '../observability/inference-events.js';
import type { Observability } from '../observability/observability.js';
import { ServeError, toServeError } from '../protocol/errors.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerInferRoutes } from './routes/infer.js';
import { registerMetadataRoutes } from './routes/metadata.js';
import { registerPredictRoutes } from './routes/predict.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerStatsRoutes } from './routes/stats.js';
import { registerRequestObservation } from './request-observation.js';
import { registerRepositoryRoutes, type RepositoryRouteOptions } from './routes/repository.js';
import { registerDrainHooks } from './shutdown.js';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../core/request-limits.js';
import { clientErrorHandler, errorBody, MAX_PARAM_LENGTH, routerErrorHandler } from './http-errors.js';
import { sendPlainJsonContentType } from './json-content-type.js';
import { decodeRequestBodies } from './request-encoding.js';

export interface AppOptions {
  registry: ModelRegistry;
  log: Logger;
  info: ServerInfo;
  /** Largest request body accepted, in bytes. */
  bodyLimit: number;
  readiness: ReadinessPolicy;
  /** Largest image /predict decodes, in pixels (width × height). */
  maxImagePixels: number;
  /** Metrics, statistics and the dashboard; left out, the server serves without them. */
  observability?: Observability;
  /** Header, tensor and BYTES limits; DEFAULT_REQUEST_LIMITS where not given. */
  limits?: Partial<RequestLimits>;
  /** Model control endpoints; off (mode none) when not given. */
  repository?: RepositoryRouteOptions;
}

export const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

export function buildApp(options: AppOptions): FastifyInstance {
  const limits: RequestLimits = { ...DEFAULT_REQUEST_LIMITS, ...options.limits };
  const app = Fastify({
    http: { maxHeaderSize: limits.maxHeaderSize },
    clientErrorHandler: clientErrorHandler(limits),
    frameworkErrors: routerErrorHandler,
    loggerInstance: options.log as FastifyBaseLogger,
    // One log line per request would drown the events that matter (loads, failures, slow inferences).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Model names are part of the path; keep the router strict and the URLs short.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Shutdown answers come from registerDrainHooks, with a reason, and health checks keep answering.
    return503OnClosing: false,
  });
  // The same encapsulated plugin a user mounts into their own app (onnx-serve/fastify): one code path.
  void app.register(registerServeRoutes, options);
  return app;
}

/**
 * The protocol routes with their body parser, error handler and 404 answer, as a fastify plugin:
 * registered in its own encapsulated scope, so the raw-body parser and error handling stay inside it
 * and never reach the routes of an app it is mounted into.
 */
export async function registerServeRoutes(app: FastifyInstance, options: AppOptions): Promise<void> {
  const limits: RequestLimits = { ...DEFAULT_REQUEST_LIMITS, ...options.limits };
  // Inside the plugin, so that a shutdown's 503 gets this scope's {error} answer.
  registerDrainHooks(app, options.readiness.draining);
  sendPlainJsonContentType(app);
  // Every body reaches the handlers as raw bytes: the infer route decodes JSON and binary tensors
  // itself, exactly (INT64 beyond 2^53) and with errors that name the tensor.
  app.removeAllContentTypeParsers();
  // bodyLimit here too: mounted into a user's app, the app's own (smaller) limit would apply otherwise.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.bodyLimit }, (_request, body, done) =>
    done(null, body),
  );
  // Compressed bodies decoded within the body limit (counted decoded); answers compressed when the
  // client asks (Accept-Encoding gzip or deflate), as Triton does. Request decoding is ours, not the
  // plugin's: its decoder keeps inflating past the limit after fastify stops reading.
  decodeRequestBodies(app, options.bodyLimit);
  // Mounted into an app that already compresses (its own @fastify/compress), that one applies here too:
  // registering it twice would decorate the reply twice, which fastify refuses.
  if (!app.hasReplyDecorator('compress')) {
    await app.register(fastifyCompress, { encodings: ['gzip', 'deflate'], globalDecompression: false });
  }

  app.setErrorHandler((error: FastifyError | ServeError, request, reply) => {
    const served = fromFrameworkError(error, options.bodyLimit);
    // An inference failure already has its (rate-limited) line from the inference log.
    const logged = wasPublished(error);
    if (served.status >= 500 && served.code !== 'OVERLOADED' && served.code !== 'UNAVAILABLE' && !logged) {
      request.log.error({ err: error, reqId: request.id, url: request.url }, served.message);
    }
    if (served.retryAfterSeconds !== undefined) void reply.header('retry-after', String(served.retryAfterSeconds));
    void reply.code(served.status).send(errorBody(served));
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      error: `no route ${request.method} ${request.url.split('?')[0]}; see GET ${app.prefix}/v2 and ${app.prefix}/v2/models/{model}[/versions/{version}][/ready|/infer|/predict]`,
    });
  });

  registerHealthRoutes(app, options.registry, options.readiness);
  registerMetadataRoutes(app, options.registry, options.info);
  registerInferRoutes(app, options.registry, limits);
  registerPredictRoutes(app, options.registry, { maxImagePixels: options.maxImagePixels });
  registerRepositoryRoutes(app, options.registry, options.repository ?? { mode: 'none' });
  if (options.observability !== undefined) {
    registerRequestObservation(app, options.registry);
    registerStatsRoutes(app, options.registry, options.observability);
    registerMetricsRoute(app, options.observability.metrics);
    registerDashboardRoutes(app);
  }
}

/** fastify's own errors (body limits, content length) get the same `{error}` shape and plain words. */
function fromFrameworkError(error: FastifyError | ServeError, bodyLimit: number): ServeError {
  if (error instanceof ServeError) return error;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ServeError(
        'PAYLOAD_TOO_LARGE',
        `request body is larger than the limit of ${bodyLimit} bytes (${(bodyLimit / 1048576).toFixed(1)} MiB); raise it with --max-body-size`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ServeError('UNSUPPORTED_MEDIA_TYPE', `unsupported Content-Type: ${error.message}`);
  }
  const status = error.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new ServeError(status === 413 ? 'PAYLOAD_TOO_LARGE' : 'INVALID_ARGUMENT', error.message);
  }
  return toServeError(error);
}

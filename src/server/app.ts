import fastifyCompress from '@fastify/compress';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ReadinessPolicy } from '../core/readiness.js';
import type { ServerInfo } from '../core/server-info.js';
import { wasPublished } from '../observability/inference-events.js';
import type { Observability } from '../observability/observability.js';
import { HEADER_LENGTH_HEADER } from '../protocol/binary-extension.js';
import type { ServeError } from '../protocol/errors.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import { registerHealthRoutes } from './routes/health.js';
import { DEFAULT_JSON_WORKER_THRESHOLDS, registerInferRoutes, type JsonWorkerThresholds } from './routes/infer.js';
import { registerMetadataRoutes } from './routes/metadata.js';
import { registerPredictRoutes } from './routes/predict.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerStatsRoutes } from './routes/stats.js';
import { readRequestBody } from './request-body.js';
import { registerRequestObservation } from './request-observation.js';
import { registerRepositoryRoutes, type RepositoryRouteOptions } from './routes/repository.js';
import { registerDrainHooks, type OpenRequests } from './shutdown.js';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../core/request-limits.js';
import {
  clientErrorHandler,
  errorBody,
  MAX_PARAM_LENGTH,
  routerErrorHandler,
  type ClientErrorKind,
} from './http-errors.js';
import {
  connectionLimits,
  evictSilentConnectionsAtCap,
  markCutByTimeout,
  timeoutServerOptions,
  type ConnectionLimits,
} from './connections.js';
import { servedError } from './framework-errors.js';
import { registerInflightBytesBound } from './inflight-bytes.js';
import { ConnectionMetrics } from '../observability/connection-metrics.js';
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
  /** Timeouts and the connection cap of the standalone server (buildApp); defaults where not given. */
  connections?: Partial<ConnectionLimits>;
  /** Bytes of request bodies being received at once; unbounded when not given. */
  maxInflightBytes?: number;
  /** The standalone server's shutdown: its grace point and the accepted requests it waits for. */
  shutdown?: { refusing: () => boolean; open: OpenRequests };
  /** Model control endpoints; off (mode none) when not given. */
  repository?: RepositoryRouteOptions;
  /** From which sizes on JSON is decoded and printed in a codec worker; DEFAULT_JSON_WORKER_THRESHOLDS where not given. */
  jsonWorkers?: Partial<JsonWorkerThresholds>;
}

export const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

/** Inference-Header-Content-Length as an offset into the body; 0 when absent or not a length (the route says why). */
function binaryDataOffset(header: string | string[] | undefined): number {
  const offset = typeof header === 'string' ? Number(header) : 0;
  return Number.isSafeInteger(offset) && offset > 0 ? offset : 0;
}

export function buildApp(options: AppOptions): FastifyInstance {
  const limits: RequestLimits = { ...DEFAULT_REQUEST_LIMITS, ...options.limits };
  const connections = connectionLimits(options.connections);
  const timeouts = timeoutServerOptions(connections);
  let metrics: ConnectionMetrics | undefined;
  const observeClientError = (kind: ClientErrorKind, socket: Socket) => {
    if (kind === 'headers_timeout' || kind === 'body_timeout') markCutByTimeout(socket);
    metrics?.clientError(kind);
  };
  const app = Fastify({
    http: { maxHeaderSize: limits.maxHeaderSize, ...timeouts.http },
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: timeouts.keepAliveTimeout,
    clientErrorHandler: clientErrorHandler(limits, observeClientError),
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
  // Past the cap Node closes a new connection as soon as it is accepted (and emits 'drop').
  app.server.maxConnections = connections.maxConnections;
  if (options.observability !== undefined) {
    metrics = new ConnectionMetrics(options.observability.metrics.registry, app.server, connections.maxConnections);
  }
  evictSilentConnectionsAtCap(app.server, (kind) => metrics?.evicted(kind));
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
  registerDrainHooks(app, {
    draining: options.readiness.draining,
    refusing: options.shutdown?.refusing ?? options.readiness.draining,
    ...(options.shutdown === undefined ? {} : { open: options.shutdown.open }),
  });
  if (options.maxInflightBytes !== undefined) {
    registerInflightBytesBound(app, {
      maxBytes: options.maxInflightBytes,
      bodyLimit: options.bodyLimit,
      ...(options.observability === undefined ? {} : { registry: options.observability.metrics.registry }),
    });
  }
  sendPlainJsonContentType(app);
  // Every body reaches the handlers as raw bytes: the infer route decodes JSON and binary tensors
  // itself, exactly (INT64 beyond 2^53) and with errors that name the tensor.
  app.removeAllContentTypeParsers();
  // Our own reader (src/server/request-body.ts): a body of known length is copied into one Buffer as
  // it arrives, not joined in one long copy at the end, with the binary tensors after the binary
  // extension's JSON header placed aligned (views, not copies). It keeps options.bodyLimit itself:
  // mounted into a user's app, the app's own (smaller) limit would apply otherwise.
  app.addContentTypeParser('*', (request, payload, done) =>
    readRequestBody(request, payload, options.bodyLimit, done, binaryDataOffset(request.headers[HEADER_LENGTH_HEADER])),
  );
  // Compressed bodies decoded within the body limit (counted decoded); inference answers compressed
  // when the client asks (Accept-Encoding gzip or deflate), as Triton does: only those routes opt in
  // (route option `compress`), because Triton compresses nothing else and tritonclient's asyncio
  // client, whose aiohttp sends Accept-Encoding on every call, decodes only inference answers. Request decoding is ours, not the
  // plugin's: its decoder keeps inflating past the limit after fastify stops reading.
  decodeRequestBodies(app, options.bodyLimit);
  // Mounted into an app that already compresses (its own @fastify/compress), that one applies here too:
  // registering it twice would decorate the reply twice, which fastify refuses.
  if (!app.hasReplyDecorator('compress')) {
    await app.register(fastifyCompress, {
      encodings: ['gzip', 'deflate'],
      globalCompression: false,
      globalDecompression: false,
    });
  }

  app.setErrorHandler((error: FastifyError | ServeError, request, reply) => {
    const served = servedError(error, request, options.bodyLimit);
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
  registerInferRoutes(app, options.registry, limits, {
    ...DEFAULT_JSON_WORKER_THRESHOLDS,
    ...options.jsonWorkers,
  });
  registerPredictRoutes(app, options.registry, { maxImagePixels: options.maxImagePixels });
  registerRepositoryRoutes(app, options.registry, options.repository ?? { mode: 'none' });
  if (options.observability !== undefined) {
    registerRequestObservation(app, options.registry, options.bodyLimit);
    registerStatsRoutes(app, options.registry, options.observability);
    registerMetricsRoute(app, options.observability.metrics);
    registerDashboardRoutes(app);
  }
}

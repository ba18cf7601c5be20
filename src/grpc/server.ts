/**
 * The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), answering from the same
 * registry, readiness policy, metadata and inference pipeline as the HTTP routes, so both transports
 * give the same answers and the same errors (as gRPC status codes, see status.ts).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { runInference } from '../core/inference.js';
import { ControlAccess, type ControlAccessOptions } from '../core/control-access.js';
import { modelConfiguration } from '../core/model-configuration.js';
import { parseLoadParameters } from '../core/load-parameters.js';
import { modelMetadata } from '../core/model-metadata.js';
import { isServerReady, modelReadiness, type ReadinessPolicy } from '../core/readiness.js';
import { modelStatistics } from '../core/model-statistics.js';
import type { Observability } from '../observability/observability.js';
import type { RequestLimits } from '../core/request-limits.js';
import type { ServerInfo } from '../core/server-info.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import {
  loadInferenceService,
  type ModelInferRequest,
  type ModelMetadataResponse,
  type RepositoryParameter,
} from './proto.js';
import { toGrpcError } from './status.js';
import { ServeError } from '../protocol/errors.js';
import { decodeInferRequest, encodeInferResponse } from './tensor-contents.js';

export interface GrpcServerOptions {
  registry: ModelRegistry;
  /** Model control and its token: the same access to the repository extension as over HTTP. */
  repository: ControlAccessOptions;
  /** Statistics; without it ModelStatistics answers UNIMPLEMENTED. */
  observability?: Observability;
  log: Logger;
  info: ServerInfo;
  readiness: ReadinessPolicy;
  /** Tensor and BYTES limits, the same as over HTTP (maxHeaderSize does not apply). */
  limits: RequestLimits;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Largest request message, in bytes: the HTTP body limit, so both transports accept the same tensors. */
  maxMessageBytes: number;
}

export interface RunningGrpcServer {
  /** host:port the server listens on (the port bound, when 0 was asked for). */
  address: string;
  port: number;
  close(): Promise<void>;
}

/** How long close() lets calls in flight finish before it cuts them off. */
const SHUTDOWN_GRACE_MS = 5000;

/**
 * signal: aborted when the client cancels the call (or its deadline passes); authorization: the
 * call's `authorization` metadata (the bearer token of the repository extension).
 */
type Handler<Request, Response> = (
  request: Request,
  signal: AbortSignal,
  authorization: string | undefined,
) => Response | Promise<Response>;

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const { registry, log, info, readiness, limits, observability } = options;
  const access = new ControlAccess(options.repository);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': -1,
  });

  /** A unary handler from a function that returns or throws; errors become gRPC statuses. */
  const unary =
    <Request, Response>(method: string, handler: Handler<Request, Response>) =>
    (call: grpc.ServerUnaryCall<Request, Response>, callback: grpc.sendUnaryData<Response>) => {
      const cancelled = new AbortController();
      call.once('cancelled', () => cancelled.abort());
      Promise.resolve()
        .then(() => {
          const [authorization] = call.metadata.get('authorization');
          return handler(call.request, cancelled.signal, typeof authorization === 'string' ? authorization : undefined);
        })
        .then(
          (response) => callback(null, response),
          (error: unknown) => {
            const { internal, ...grpcError } = toGrpcError(error);
            if (internal) log.error({ err: error, method }, grpcError.details);
            callback(grpcError);
          },
        );
    };

  const versionOrLatest = (version: string) => (version === '' ? undefined : version);

  server.addService(loadInferenceService(), {
    ServerLive: unary('ServerLive', () => ({ live: true })),
    ServerReady: unary('ServerReady', () => ({ ready: isServerReady(registry, readiness) })),
    // Triton's ModelIsReady answers ready: false, not an error, for a model or version it does not
    // have (an unloaded one included): tritonclient's gRPC is_model_ready raises on an error.
    ModelReady: unary('ModelReady', (request: { name: string; version: string }) => {
      try {
        return { ready: modelReadiness(registry, request.name, versionOrLatest(request.version)).ready };
      } catch (error) {
        if (error instanceof ServeError && error.code === 'NOT_FOUND') return { ready: false };
        throw error;
      }
    }),
    ServerMetadata: unary('ServerMetadata', () => ({
      name: info.name,
      version: info.version,
      extensions: info.extensions,
    })),
    ModelMetadata: unary(
      'ModelMetadata',
      async (request: { name: string; version: string }): Promise<ModelMetadataResponse> => {
        const metadata = modelMetadata(
          registry,
          await registry.acquire(request.name, versionOrLatest(request.version)),
        );
        const { name, versions, platform, inputs, outputs } = metadata;
        return { name, versions, platform, inputs, outputs };
      },
    ),
    ModelInfer: unary('ModelInfer', async (request: ModelInferRequest, signal) => {
      const model = await registry.acquire(request.model_name, versionOrLatest(request.model_version ?? ''));
      const full = model.queue.overload();
      if (full !== undefined) throw full;
      const decoded = decodeInferRequest(request);
      const { response } = await runInference(model, decoded.header, decoded.decodeInputs, { signal, limits });
      return encodeInferResponse(response);
    }),
    ModelConfig: unary('ModelConfig', async (request: { name: string; version: string }) => ({
      config: modelConfiguration(await registry.acquire(request.name, versionOrLatest(request.version))),
    })),
    ...(observability === undefined
      ? {}
      : {
          ModelStatistics: unary('ModelStatistics', (request: { name: string; version: string }) => ({
            model_stats: modelStatistics(
              registry,
              observability,
              request.name === '' ? undefined : request.name,
              versionOrLatest(request.version),
            ),
          })),
        }),
    RepositoryIndex: unary('RepositoryIndex', async (request: { ready: boolean }, _signal, authorization) => {
      access.authorize(authorization);
      const entries = await access.index(registry, request.ready);
      return {
        models: entries.map((entry) => ({
          ...entry,
          version: entry.version ?? '',
          state: entry.state ?? '',
          reason: entry.reason ?? '',
        })),
      };
    }),
    RepositoryModelLoad: unary(
      'RepositoryModelLoad',
      async (
        request: { model_name: string; parameters?: Record<string, RepositoryParameter> },
        _signal,
        authorization,
      ) => {
        const control = access.control(authorization, 'RepositoryModelLoad');
        const parameters = Object.entries(request.parameters ?? {}).map(([key, p]) => [
          key,
          p.parameter_choice === undefined ? undefined : p[p.parameter_choice],
        ]);
        await control.load(request.model_name, parseLoadParameters(request.model_name, Object.fromEntries(parameters)));
        return {};
      },
    ),
    RepositoryModelUnload: unary(
      'RepositoryModelUnload',
      async (request: { model_name: string }, _signal, authorization) => {
        await access.control(authorization, 'RepositoryModelUnload').unload(request.model_name);
        return {};
      },
    ),
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error
        ? (server.forceShutdown(),
          reject(
            new Error(
              `cannot listen for gRPC on ${options.host}:${options.port} (${error.message}); choose another --grpc-port (in the CLI, --grpc-port 0 turns gRPC off)`,
            ),
          ))
        : resolve(bound),
    );
  });
  const address = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  return {
    address,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

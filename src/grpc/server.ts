/**
 * The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), answering from the same
 * registry, readiness policy, metadata and inference pipeline as the HTTP routes, so both transports
 * give the same answers and the same errors (as gRPC status codes, see status.ts).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { runInference } from '../core/inference.js';
import type { ModelControl } from '../core/model-control.js';
import { modelConfiguration } from '../core/model-configuration.js';
import { modelMetadata } from '../core/model-metadata.js';
import { isServerReady, modelReadiness, type ReadinessPolicy } from '../core/readiness.js';
import { repositoryIndex } from '../core/repository-index.js';
import type { RequestLimits } from '../core/request-limits.js';
import type { ServerInfo } from '../core/server-info.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import { loadInferenceService, type ModelInferRequest, type ModelMetadataResponse } from './proto.js';
import { toGrpcError } from './status.js';
import { decodeInferRequest, encodeInferResponse } from './tensor-contents.js';

export interface GrpcServerOptions {
  registry: ModelRegistry;
  /** Model control, when on: the index then says why a reload failed. */
  control?: ModelControl;
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

/** signal: aborted when the client cancels the call (or its deadline passes). */
type Handler<Request, Response> = (request: Request, signal: AbortSignal) => Response | Promise<Response>;

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const { registry, control, log, info, readiness, limits } = options;
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
        .then(() => handler(call.request, cancelled.signal))
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
    ModelReady: unary('ModelReady', (request: { name: string; version: string }) => ({
      ready: modelReadiness(registry, request.name, versionOrLatest(request.version)).ready,
    })),
    ServerMetadata: unary('ServerMetadata', () => ({
      name: info.name,
      version: info.version,
      extensions: info.extensions,
    })),
    ModelMetadata: unary('ModelMetadata', (request: { name: string; version: string }): ModelMetadataResponse => {
      const metadata = modelMetadata(registry, registry.resolveReady(request.name, versionOrLatest(request.version)));
      const { name, versions, platform, inputs, outputs } = metadata;
      return { name, versions, platform, inputs, outputs };
    }),
    ModelInfer: unary('ModelInfer', async (request: ModelInferRequest, signal) => {
      const model = registry.resolveReady(request.model_name, versionOrLatest(request.model_version ?? ''));
      const full = model.queue.overload();
      if (full !== undefined) throw full;
      const decoded = decodeInferRequest(request);
      const { response } = await runInference(model, decoded.header, decoded.decodeInputs, { signal, limits });
      return encodeInferResponse(response);
    }),
    ModelConfig: unary('ModelConfig', (request: { name: string; version: string }) => ({
      config: modelConfiguration(registry.resolveReady(request.name, versionOrLatest(request.version))),
    })),
    RepositoryIndex: unary('RepositoryIndex', (request: { ready: boolean }) => ({
      models: repositoryIndex(registry, {
        readyOnly: request.ready,
        ...(control === undefined ? {} : { reloadFailure: (name, version) => control.reloadFailure(name, version) }),
      }).map((entry) => ({ ...entry, version: entry.version ?? '', reason: entry.reason ?? '' })),
    })),
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

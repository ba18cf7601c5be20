/**
 * A small promise-based client for the gRPC service, built from the same .proto as the server:
 * what the end-to-end tests and docs/clients.md use, and a starting point for Node.js callers.
 */
import * as grpc from '@grpc/grpc-js';
import {
  loadInferenceService,
  type ModelIndex,
  type ModelInferRequest,
  type ModelInferResponse,
  type ModelMetadataResponse,
} from './proto.js';

export interface InferenceClient {
  serverLive(): Promise<{ live: boolean }>;
  serverReady(): Promise<{ ready: boolean }>;
  modelReady(request: { name: string; version?: string }): Promise<{ ready: boolean }>;
  serverMetadata(): Promise<{ name: string; version: string; extensions: string[] }>;
  modelMetadata(request: { name: string; version?: string }): Promise<ModelMetadataResponse>;
  modelInfer(request: ModelInferRequest): Promise<ModelInferResponse>;
  repositoryIndex(request?: { ready?: boolean }, headers?: Headers): Promise<{ models: ModelIndex[] }>;
  /** Triton's ModelConfig as proto-loader decodes it (64-bit numbers as strings, enums as names). */
  modelConfig(request: { name: string; version?: string }): Promise<{ config: Record<string, unknown> }>;
  /** Statistics of every model (no name), a model's versions, or one version. */
  modelStatistics(request?: { name?: string; version?: string }): Promise<{ model_stats: GrpcModelStatistics[] }>;
  /** Model control: pass `{ authorization: 'Bearer <token>' }` as headers when the server has a control token. */
  repositoryModelLoad(
    request: { model_name: string; parameters?: Record<string, { string_param?: string; bytes_param?: Uint8Array }> },
    headers?: Headers,
  ): Promise<Record<string, never>>;
  repositoryModelUnload(request: { model_name: string }, headers?: Headers): Promise<Record<string, never>>;
  close(): void;
}

/** Metadata sent with a call, as tritonclient's `headers=`: e.g. the control token as `authorization`. */
export type Headers = Record<string, string>;

/** A ModelStatistics message as proto-loader decodes it (64-bit counters as decimal strings). */
export interface GrpcModelStatistics {
  name: string;
  version: string;
  last_inference: string;
  inference_count: string;
  execution_count: string;
  inference_stats: Record<string, { count: string; ns: string }>;
  batch_stats: Array<{ batch_size: string } & Record<string, unknown>>;
  memory_usage: unknown[];
}

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  callback: (error: grpc.ServiceError | null, response: unknown) => void,
) => grpc.ClientUnaryCall;

/** A client for `host:port`, without TLS; requests and responses may be as large as `maxMessageBytes`. */
export function createInferenceClient(address: string, maxMessageBytes = 64 * 1024 * 1024): InferenceClient {
  const Client = grpc.makeGenericClientConstructor(loadInferenceService(), 'GRPCInferenceService');
  const client = new Client(address, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  }) as unknown as Record<string, UnaryMethod> & grpc.Client;
  const call =
    <Response>(method: string) =>
    (request: object = {}, headers: Headers = {}) =>
      new Promise<Response>((resolve, reject) => {
        const metadata = new grpc.Metadata();
        for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
        client[method].call(client, request, metadata, (error, response) =>
          error ? reject(error) : resolve(response as Response),
        );
      });
  return {
    serverLive: call('ServerLive'),
    serverReady: call('ServerReady'),
    modelReady: call('ModelReady'),
    serverMetadata: call('ServerMetadata'),
    modelMetadata: call('ModelMetadata'),
    modelInfer: call('ModelInfer'),
    repositoryIndex: call('RepositoryIndex'),
    modelConfig: call('ModelConfig'),
    modelStatistics: call('ModelStatistics'),
    repositoryModelLoad: call('RepositoryModelLoad'),
    repositoryModelUnload: call('RepositoryModelUnload'),
    close: () => client.close(),
  };
}

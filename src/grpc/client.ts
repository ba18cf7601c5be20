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
  repositoryIndex(request?: { ready?: boolean }): Promise<{ models: ModelIndex[] }>;
  /** Triton's ModelConfig as proto-loader decodes it (64-bit numbers as strings, enums as names). */
  modelConfig(request: { name: string; version?: string }): Promise<{ config: Record<string, unknown> }>;
  close(): void;
}

type UnaryMethod = (
  request: unknown,
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
    (request: object = {}) =>
      new Promise<Response>((resolve, reject) => {
        client[method].call(client, request, (error, response) =>
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
    close: () => client.close(),
  };
}

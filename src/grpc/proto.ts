/**
 * The Open Inference Protocol's gRPC service, loaded from proto/open_inference_grpc.proto, and the
 * shapes its messages take in JavaScript with the loader options below: snake_case field names as
 * in the .proto, 64-bit integers as decimal strings (exact, unlike numbers), bytes as Buffers,
 * every field present (empty arrays, empty strings, null for an absent message).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

/** ../../proto from both src/grpc (tsx) and dist/grpc (npm start); package.json ships proto/. */
export const PROTO_PATH = fileURLToPath(new URL('../../proto/open_inference_grpc.proto', import.meta.url));

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
};

/** 64-bit integers travel as decimal strings; numbers are accepted when sending. */
export type Int64 = string | number;

export interface InferParameter {
  bool_param?: boolean;
  int64_param?: Int64;
  string_param?: string;
  double_param?: number;
  uint64_param?: Int64;
  /** Which field of the oneof is set (received messages only). */
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param';
}

/** A repository load's parameter (Triton's ModelRepositoryParameter). */
export interface RepositoryParameter {
  bool_param?: boolean;
  int64_param?: Int64;
  string_param?: string;
  bytes_param?: Buffer;
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'bytes_param';
}

export interface InferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: Int64[];
  uint_contents?: number[];
  uint64_contents?: Int64[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

export interface InferTensor {
  name: string;
  datatype: string;
  shape: Int64[];
  parameters?: Record<string, InferParameter>;
  contents?: InferTensorContents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, InferParameter>;
  inputs: InferTensor[];
  outputs?: { name: string; parameters?: Record<string, InferParameter> }[];
  raw_input_contents?: Uint8Array[];
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Record<string, InferParameter>;
  outputs: InferTensor[];
  raw_output_contents: Uint8Array[];
}

export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: Int64[];
}

export interface ModelMetadataResponse {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface ModelIndex {
  name: string;
  version: string;
  state: string;
  reason: string;
}

/** The service definition, for a server's addService and for clients (makeGenericClientConstructor). */
export function loadInferenceService(): grpc.ServiceDefinition {
  const definition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
  return definition['inference.GRPCInferenceService'] as grpc.ServiceDefinition;
}

/**
 * onnx-serve/client: a typed Open Inference Protocol client for Node 20 and browsers.
 * Everything in this import graph must stay browser-safe (no node:* imports, no Buffer);
 * test/e2e/client-browser.test.ts runs it in Chromium and scans it.
 */
export { InferenceClient } from './inference-client.js';
export type {
  CallOptions,
  InferenceClientOptions,
  InferOptions,
  ModelCallOptions,
  ModelMetadata,
  PredictOptions,
  ServerMetadata,
  TensorMetadata,
} from './inference-client.js';
export { InferenceServerError } from './errors.js';
export { ServeError } from '../protocol/errors.js';
export type { ErrorCode } from '../protocol/errors.js';
export type { Datatype, Tensor, TensorData } from '../protocol/datatypes.js';
export type { Parameters, ParameterValue } from '../protocol/json-codec.js';
export type { InferInputs, InferResult, TensorInput } from '../protocol/typed-tensors.js';

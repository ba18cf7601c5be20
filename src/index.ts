/**
 * onnx-serve as a library: load ONNX models into your own process (loadModel, loadRepository),
 * mount the Open Inference Protocol into your fastify app (onnx-serve/fastify), or call a remote
 * server (onnx-serve/client). Everything not exported here is internal.
 */
export { loadModel, loadRepository, Repository } from './library/in-process.js';
export type {
  ImageBytes,
  InferCallOptions,
  LoadedModel,
  LoadModelOptions,
  LoadOptions,
  LoadRepositoryOptions,
  Model,
  ModelMetadata,
  ModelStatus,
  PredictResult,
} from './library/in-process.js';
export type { PredictAnswer, Prediction } from './processing/predict.js';
export type { PredictionOf, StageTimings } from './processing/image-model.js';
export type { OcrLine } from './processing/pipeline.js';
export type { RecognizedText } from './processing/postprocess/ctc.js';
export type { Point, TextBox } from './processing/postprocess/db-text-detection.js';
export type { ScoredLabel } from './processing/postprocess/top-k.js';
export { ServeError, HTTP_STATUS } from './protocol/errors.js';
export type { ErrorCode } from './protocol/errors.js';
export { ConfigError } from './config/model-config.js';
export type {
  DynamicBatchingConfig,
  ExecutionProviderName,
  GraphOptimizationLevel,
  ModelConfig,
  SessionConfig,
  WarmupConfig,
} from './config/model-config.js';
export type {
  FileRef,
  PipelineConfig,
  PostprocessConfig,
  PreprocessConfig,
  ResizeConfig,
} from './config/processing-config.js';
export type { ModelState } from './repository/model-version.js';
export type { RequestLimits } from './core/request-limits.js';
export type { ProviderAttempt } from './runtime/execution-providers.js';
export type { Datatype, Tensor, TensorData } from './protocol/datatypes.js';
export type { InferInputs, InferResult, TensorInput } from './protocol/typed-tensors.js';
export { isServeError } from './library/errors.js';
/** The folder of the embedded model repository (the PP-OCR text detector, recognizer and orientation models). */
export { DEFAULT_MODEL_REPOSITORY as defaultModelRepository } from './server/start.js';

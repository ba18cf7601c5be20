/**
 * What a model declares: the Open Inference Protocol's model metadata, plus what actually runs it.
 * One answer for HTTP `GET /v2/models/{m}`, gRPC `ModelMetadata` and the in-process `model.metadata`.
 */
import path from 'node:path';
import type { ModelRegistry } from '../repository/model-registry.js';
import type { ModelVersion, OnDemand } from '../repository/model-version.js';
import { protocolShape, type TensorSpec } from '../runtime/signature.js';

/** Platform name the Open Inference Protocol gives ONNX models. */
export const PLATFORM = 'onnx_onnxv1';

export function modelMetadata(registry: ModelRegistry, version: ModelVersion) {
  if (version.spec.config.pipeline !== undefined) return pipelineMetadata(registry, version);
  const loaded = version.loaded!;
  const tensor = (spec: TensorSpec) => ({
    name: spec.name,
    datatype: spec.datatype ?? `unsupported (${spec.ortType})`,
    shape: protocolShape(spec.dims),
  });
  return {
    name: version.name,
    versions: registry.versionsOf(version.name).map((v) => String(v.version)),
    platform: PLATFORM,
    inputs: loaded.signature.inputs.map(tensor),
    outputs: loaded.signature.outputs.map(tensor),
    ...predictMetadata(version),
    // Beyond the protocol: what is actually running, so nobody has to guess (e.g. a silent CPU fallback).
    state: version.state,
    execution_provider: loaded.provider,
    runtime: {
      version: String(version.version),
      // float, or int8 for the variant `precision: int8` built; model_file says which file runs.
      precision: version.servedFile?.precision ?? 'float',
      model_file: path.basename(version.servedFile?.path ?? version.spec.modelPath),
      skipped_providers: loaded.skippedProviders,
      instances: loaded.instances,
      // The shared worker thread each instance's session is on (null while it is being reloaded).
      worker_threads: version.pool?.placement ?? [],
      intra_op_threads: version.settings.intraOpThreads,
      // config (config.yaml), cores (the usable cores ÷ instances) or many-models (1: sharedThreadPlan).
      intra_op_threads_source: version.settings.intraOpThreadsSource,
      inter_op_threads: version.settings.interOpThreads,
      graph_optimization_level: version.settings.graphOptimizationLevel,
      dynamic_dims: Object.fromEntries(
        loaded.signature.inputs.map((spec) => [spec.name, spec.dims.map((d) => (typeof d === 'string' ? d : null))]),
      ),
      load_ms: Math.round(loaded.loadMs),
      warmup_ms: Math.round(loaded.warmup.ms),
      warmup_runs: loaded.warmup.runs,
      // Shapes known to run: what the dashboard's "try it" panel sends.
      warmup_shapes: loaded.warmup.shapes,
      ...(loaded.warmup.warning === undefined ? {} : { warmup_warning: loaded.warmup.warning }),
      ...(version.onDemand === undefined ? {} : { on_demand: onDemandMetadata(version.onDemand) }),
    },
  };
}

/** A version that loads on demand: its loads, evictions and measured memory. */
export function onDemandMetadata(demand: OnDemand) {
  return {
    loads: demand.loads,
    evictions: demand.evictions,
    ...(demand.memoryBytes === undefined ? {} : { memory_bytes: demand.memoryBytes }),
    ...(demand.lastLoadMs === undefined ? {} : { last_load_ms: Math.round(demand.lastLoadMs) }),
  };
}

/** A pipeline has no tensors of its own: it takes images through /predict only. */
function pipelineMetadata(registry: ModelRegistry, version: ModelVersion) {
  return {
    name: version.name,
    versions: registry.versionsOf(version.name).map((v) => String(v.version)),
    platform: 'onnx_serve_pipeline',
    inputs: [],
    outputs: [],
    state: version.state,
    ...predictMetadata(version),
  };
}

/** What a model's metadata says about /predict, so that clients (the dashboard) can offer an image drop. */
export function predictMetadata(model: Pick<ModelVersion, 'name' | 'spec'>) {
  const { preprocess, postprocess, pipeline } = model.spec.config;
  if (pipeline !== undefined)
    return { predict: { endpoint: `/v2/models/${model.name}/predict`, answers: pipeline.type, pipeline } };
  if (preprocess === undefined || postprocess === undefined) return {};
  return { predict: { endpoint: `/v2/models/${model.name}/predict`, answers: postprocess.type, preprocess } };
}

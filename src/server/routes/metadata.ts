import type { FastifyInstance } from 'fastify';
import type { ModelRegistry, ModelVersion } from '../../repository/model-registry.js';
import { unavailable } from '../../protocol/errors.js';
import { protocolShape, type TensorSpec } from '../../runtime/signature.js';
import type { ServerInfo } from '../app.js';
import { predictMetadata } from './predict.js';

/** Platform name the Open Inference Protocol gives ONNX models. */
export const PLATFORM = 'onnx_onnxv1';

interface ModelParams {
  model: string;
  version?: string;
}

export function registerMetadataRoutes(app: FastifyInstance, registry: ModelRegistry, info: ServerInfo): void {
  app.get('/v2', async () => ({ name: info.name, version: info.version, extensions: info.extensions }));

  const metadata = async (request: { params: ModelParams }) => {
    const { model, version } = request.params;
    const found = registry.resolve(model, version);
    if (found.state !== 'READY') {
      const why =
        found.state === 'LOADING' ? 'is still loading' : `is unavailable: ${found.reason ?? 'unknown reason'}`;
      throw unavailable(`model ${found.name} version ${found.version} ${why}`);
    }
    return modelMetadata(registry, found);
  };
  app.get<{ Params: ModelParams }>('/v2/models/:model', metadata);
  app.get<{ Params: ModelParams }>('/v2/models/:model/versions/:version', metadata);

  const ready = async (request: { params: ModelParams }, reply: { code: (n: number) => unknown }) => {
    const { model, version } = request.params;
    const found = registry.resolve(model, version);
    const isReady = found.state === 'READY';
    // The status code is the answer for the original protocol and Triton; the body for newer clients.
    reply.code(isReady ? 200 : 503);
    return {
      name: found.name,
      version: String(found.version),
      ready: isReady,
      state: found.state,
      ...(found.reason === undefined ? {} : { reason: found.reason }),
    };
  };
  app.get<{ Params: ModelParams }>('/v2/models/:model/ready', ready);
  app.get<{ Params: ModelParams }>('/v2/models/:model/versions/:version/ready', ready);
}

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
      skipped_providers: loaded.skippedProviders,
      instances: loaded.instances,
      intra_op_threads: version.settings.intraOpThreads,
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
    },
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

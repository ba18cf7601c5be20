/**
 * Triton's model configuration extension: a model version's configuration in Triton's ModelConfig
 * form (triton-inference-server/common, protobuf/model_config.proto), as `GET
 * /v2/models/{m}[/versions/{v}]/config` and gRPC `ModelConfig` answer it. Clients built on
 * tritonclient's get_model_config (Triton's image client, model analyzers) read the batch size,
 * tensor types and dims from here. The numbers come from what runs: the signature the session
 * reported, the batching the queue actually does, the instances that started.
 */
import type { Datatype } from '../protocol/datatypes.js';
import type { ReadyModelVersion } from '../repository/model-version.js';
import type { TensorSpec } from '../runtime/signature.js';
import { resolveBatchingPolicy } from '../scheduler/batching-policy.js';
import path from 'node:path';

/** Triton's platform and backend for ONNX models, which its clients and tools expect. */
export const TRITON_PLATFORM = 'onnxruntime_onnx';
export const TRITON_BACKEND = 'onnxruntime';

/** The protocol datatype as Triton's DataType enum names it (BYTES is TYPE_STRING there). */
export function tritonDataType(datatype: Datatype | null): string {
  if (datatype === null) return 'TYPE_INVALID';
  return datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${datatype}`;
}

export interface TritonModelInput {
  name: string;
  data_type: string;
  format: 'FORMAT_NONE' | 'FORMAT_NCHW' | 'FORMAT_NHWC';
  dims: number[];
  is_shape_tensor: boolean;
  allow_ragged_batch: boolean;
  optional: boolean;
}

export interface TritonModelOutput {
  name: string;
  data_type: string;
  dims: number[];
  label_filename: string;
  is_shape_tensor: boolean;
}

export interface TritonModelConfig {
  name: string;
  platform: string;
  backend: string;
  version_policy: { all: Record<string, never> };
  max_batch_size: number;
  input: TritonModelInput[];
  output: TritonModelOutput[];
  dynamic_batching?: {
    preferred_batch_size: number[];
    max_queue_delay_microseconds: number;
    preserve_ordering: boolean;
    priority_levels: number;
    default_priority_level: number;
    default_queue_policy: {
      timeout_action: 'REJECT';
      default_timeout_microseconds: number;
      allow_timeout_override: boolean;
      max_queue_size: number;
    };
  };
  instance_group: Array<{ name: string; kind: 'KIND_CPU' | 'KIND_GPU'; count: number; gpus: number[] }>;
  default_model_filename: string;
}

/**
 * The input config.yaml's `preprocess` fills from an image, with its layout as Triton's input
 * `format`: Triton's image client reads the layout from there and refuses FORMAT_NONE.
 */
function imageInput(version: ReadyModelVersion): { name: string; format: 'FORMAT_NCHW' | 'FORMAT_NHWC' } | undefined {
  const preprocess = version.spec.config.preprocess;
  const inputs = version.loaded.signature.inputs;
  if (preprocess === undefined) return undefined;
  const name = preprocess.input ?? (inputs.length === 1 ? inputs[0].name : undefined);
  return name === undefined ? undefined : { name, format: `FORMAT_${preprocess.layout ?? 'NCHW'}` };
}

/**
 * The configuration of a ready version. With batching on, `max_batch_size` is the batch the queue
 * forms and every dims leaves out the batch dimension, as Triton's do; with batching off it is 0 and
 * dims are whole. Dynamic dimensions are -1.
 */
export function modelConfiguration(version: ReadyModelVersion): TritonModelConfig {
  const { signature, instances, provider } = version.loaded;
  const maxBatchSize = version.queue.maxBatchSize;
  const dimsOf = (spec: TensorSpec) =>
    spec.dims.slice(maxBatchSize > 0 ? 1 : 0).map((d) => (typeof d === 'number' ? d : -1));
  const policy = resolveBatchingPolicy(version.spec.config);
  const image = imageInput(version);
  return {
    name: version.name,
    platform: TRITON_PLATFORM,
    backend: TRITON_BACKEND,
    version_policy: { all: {} },
    max_batch_size: maxBatchSize,
    input: signature.inputs.map((spec) => ({
      name: spec.name,
      data_type: tritonDataType(spec.datatype),
      format: spec.name === image?.name ? image.format : 'FORMAT_NONE',
      dims: dimsOf(spec),
      is_shape_tensor: false,
      allow_ragged_batch: false,
      optional: false,
    })),
    output: signature.outputs.map((spec) => ({
      name: spec.name,
      data_type: tritonDataType(spec.datatype),
      dims: dimsOf(spec),
      label_filename: version.spec.config.label_filename?.[spec.name] ?? '',
      is_shape_tensor: false,
    })),
    ...(maxBatchSize > 0
      ? {
          dynamic_batching: {
            preferred_batch_size: policy.preferredBatchSizes,
            max_queue_delay_microseconds: Math.round(policy.maxQueueDelayMs * 1000),
            preserve_ordering: false,
            priority_levels: 0,
            default_priority_level: 0,
            default_queue_policy: {
              timeout_action: 'REJECT' as const,
              default_timeout_microseconds: policy.defaultTimeoutMicroseconds,
              allow_timeout_override: policy.allowTimeoutOverride,
              max_queue_size: policy.maxQueueSize,
            },
          },
        }
      : {}),
    instance_group: [
      {
        name: `${version.name}_0`,
        kind: provider === 'cpu' ? 'KIND_CPU' : 'KIND_GPU',
        count: instances,
        gpus: [],
      },
    ],
    default_model_filename: path.basename(version.spec.modelPath),
  };
}

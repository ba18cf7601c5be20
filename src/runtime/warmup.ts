import type { WarmupConfig } from '../config/model-config.js';
import type { Tensor } from '../protocol/datatypes.js';
import { decodeJsonTensorData } from '../protocol/json-decode.js';
import { syntheticData } from '../protocol/synthetic-data.js';
import type { ModelSignature, TensorSpec } from './signature.js';

export const DEFAULT_WARMUP_RUNS = 10;
const DEFAULT_BATCH_DIM = 1;
const DEFAULT_OTHER_DIM = 32;

/** Warmup inputs: supplied data where the config has it, deterministic synthetic data elsewhere. */
export function warmupInputs(
  signature: ModelSignature,
  config: WarmupConfig,
): { tensors: Tensor[]; supplied: boolean } {
  let supplied = false;
  const tensors = signature.inputs.map((spec) => {
    const given = config.inputs?.[spec.name];
    const shape = given?.shape ?? warmupShape(spec, config);
    if (spec.datatype === null) {
      throw new Error(`input ${spec.name} has type ${spec.ortType}, which onnx-serve cannot synthesise`);
    }
    if (given?.data !== undefined) {
      supplied = true;
      return decodeJsonTensorData({ name: spec.name, datatype: spec.datatype, shape, data: given.data });
    }
    return syntheticTensor(spec, shape);
  });
  return { tensors, supplied };
}

function warmupShape(spec: TensorSpec, config: WarmupConfig): number[] {
  return spec.dims.map((dim, index) => {
    if (typeof dim === 'number') return dim;
    const named = config.dims?.[dim];
    if (named !== undefined) return named;
    return index === 0 ? (config.batch_dim ?? DEFAULT_BATCH_DIM) : (config.other_dim ?? DEFAULT_OTHER_DIM);
  });
}

function syntheticTensor(spec: TensorSpec, shape: number[]): Tensor {
  const datatype = spec.datatype!;
  return { datatype, shape, data: syntheticData(datatype, shape) };
}

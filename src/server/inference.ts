import type { NamedTensor } from '../protocol/datatypes.js';
import { invalidArgument } from '../protocol/errors.js';
import type { InferenceRequestHeader, InferenceResponse } from '../protocol/json-codec.js';
import { validateInputAgainstMetadata, validateInputNames, validateRequestedOutputNames } from '../protocol/shape.js';
import type { ModelVersion } from '../repository/model-registry.js';
import { protocolShape } from '../runtime/signature.js';
import type { PoolReady, WorkerPool } from '../runtime/worker-pool.js';

export type ReadyModel = ModelVersion & { pool: WorkerPool; loaded: PoolReady };

/** Where the time of one request went, for metrics and logs. */
export interface InferenceTimings {
  queueMs: number;
  computeMs: number;
  /** Items the request carried (its first dimension), or 1 for a model without a batch dimension. */
  items: number;
}

export interface InferenceResult {
  response: InferenceResponse;
  timings: InferenceTimings;
}

/**
 * Checks a request against the model's signature, runs it on the model's workers and answers the
 * outputs in the order the request asked for them (all outputs, in model order, if it named none).
 * The header is checked before `decodeInputs` runs, so a wrong shape is reported as such rather than
 * as a data-length mismatch, and no time goes into decoding a request that cannot run.
 * Transport-neutral: HTTP today, gRPC and the in-process API share it.
 */
export async function runInference(
  model: ReadyModel,
  header: InferenceRequestHeader,
  decodeInputs: () => NamedTensor[],
): Promise<InferenceResult> {
  const { signature } = model.loaded;
  const label = model.name;
  validateInputNames(header.inputs, signature.inputs, label);
  header.inputs.forEach((input, index) => {
    const spec = signature.inputs.find((s) => s.name === input.name)!;
    if (spec.datatype === null) {
      throw invalidArgument(
        `input ${spec.name} of model ${label} has type ${spec.ortType}, which onnx-serve cannot feed`,
      );
    }
    validateInputAgainstMetadata(
      input,
      { name: spec.name, datatype: spec.datatype, shape: protocolShape(spec.dims) },
      label,
      index,
    );
  });
  validateRequestedOutputNames(header.outputs, signature.outputs, label);

  const wanted = header.outputs?.map((output) => output.name);
  const inputs = decodeInputs();
  const { outputs, queueMs, computeMs } = await model.pool.run(inputs, wanted);
  const byName = new Map(outputs.map((output) => [output.name, output]));
  const order = wanted ?? signature.outputs.map((spec) => spec.name);
  const response: InferenceResponse = {
    model_name: model.name,
    model_version: String(model.version),
    outputs: order.map((name) => byName.get(name)).filter((o): o is NamedTensor => o !== undefined),
  };
  if (header.id !== undefined) response.id = header.id;
  return { response, timings: { queueMs, computeMs, items: inputs[0]?.shape[0] ?? 1 } };
}

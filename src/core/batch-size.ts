/**
 * `max_batch_size` as a contract, as Triton keeps it: set in a model's config.yaml (> 0), it is the
 * most items (the first dimension) one request may carry. The dynamic batcher's default of 8 when
 * config.yaml says nothing stays a scheduling choice only, so models configured without it keep
 * taking requests of any batch.
 */
import { invalidArgument } from '../protocol/errors.js';
import type { InferenceRequestHeader } from '../protocol/json-codec.js';
import type { ModelVersion } from '../repository/model-version.js';

/** The largest batch one request may carry, or undefined when config.yaml sets no max_batch_size > 0. */
export function requestBatchCap(model: ModelVersion): number | undefined {
  const max = model.spec.config.max_batch_size;
  return max !== undefined && max > 0 ? max : undefined;
}

/** INVALID_ARGUMENT, in Triton's words and then which input, for a request over the model's max_batch_size. */
export function checkBatchSize(model: ModelVersion, header: InferenceRequestHeader): void {
  const max = requestBatchCap(model);
  if (max === undefined) return;
  header.inputs.forEach((input, index) => {
    if (input.shape.length === 0) return;
    const items = Number(input.shape[0]);
    if (items > max) {
      throw invalidArgument(
        `inference request batch-size must be <= ${max} for '${model.name}': inputs[${index}] (${input.name}) ` +
          `has ${items} items in its first dimension, more than max_batch_size ${max} in the model's config.yaml`,
      );
    }
  });
}

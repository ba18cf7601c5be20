/**
 * Checks of a request against a model's metadata: input and output names, datatypes, ranks and
 * dimensions. Model metadata marks a variable dimension with -1, as the protocol's metadata does.
 */

import type { Datatype } from './datatypes.js';
import { invalidArgument } from './errors.js';

/** A tensor's name, datatype and shape, as a request carries it or model metadata declares it. */
export interface TensorSignature {
  name: string;
  datatype: Datatype;
  shape: readonly number[];
}

/** `[1,3,224,224]`: the form every message uses for a shape. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/**
 * Throws invalidArgument unless the request's input (inputs[index]) has the datatype, rank and
 * fixed dimensions that the model declares for it. `modelLabel` names the model in messages.
 */
export function validateInputAgainstMetadata(
  input: TensorSignature,
  expected: TensorSignature,
  modelLabel: string,
  index: number,
): void {
  if (input.datatype !== expected.datatype) {
    throw invalidArgument(
      `input ${input.name} of model ${modelLabel} expects ${expected.datatype}, got ${input.datatype}`,
    );
  }
  if (input.shape.length !== expected.shape.length) {
    throw invalidArgument(
      `input ${input.name} of model ${modelLabel} has rank ${expected.shape.length} (${formatShape(expected.shape)}), ` +
        `got shape ${formatShape(input.shape)} of rank ${input.shape.length}`,
    );
  }
  for (let dimension = 0; dimension < expected.shape.length; dimension++) {
    const want = expected.shape[dimension];
    const got = input.shape[dimension];
    if (want >= 0 && got !== want) {
      throw invalidArgument(
        `inputs[${index}].shape[${dimension}] must be ${want} (model ${modelLabel}, input ${input.name}), got ${got}`,
      );
    }
  }
}

/**
 * Throws invalidArgument when the request's input breaks the shape a model's config.yaml allows:
 * a dimension it fixes, or the upper bound of one that varies. Named: dimension, value and bound.
 */
export function validateInputBounds(
  input: TensorSignature,
  bound: { source: string; dims: readonly number[]; maxDims: readonly number[] },
  modelLabel: string,
  index: number,
): void {
  bound.dims.forEach((dim, d) => {
    const got = input.shape[d];
    if (dim !== -1 && got !== dim) {
      throw invalidArgument(
        `inputs[${index}].shape[${d}] must be ${dim} (model ${modelLabel}, input ${input.name}, ${bound.source}.dims), got ${got}`,
      );
    }
    const max = bound.maxDims[d];
    if (max !== -1 && got > max) {
      throw invalidArgument(
        `inputs[${index}].shape[${d}] is ${got}, above the bound of ${max} for that dimension ` +
          `(model ${modelLabel}, input ${input.name}, ${bound.source}.max_dims[${d}]); send a smaller tensor or split it`,
      );
    }
  });
}

/**
 * Throws invalidArgument unless the request names every model input exactly once and nothing else.
 * (The JSON codec already refuses duplicates; raw and gRPC requests reach this check too.)
 */
export function validateInputNames(
  requested: readonly { name: string }[],
  modelInputs: readonly { name: string }[],
  modelLabel: string,
): void {
  const known = new Set(modelInputs.map((input) => input.name));
  const seen = new Set<string>();
  for (const { name } of requested) {
    if (!known.has(name)) {
      throw invalidArgument(
        `unknown input ${JSON.stringify(name)} for model ${modelLabel}; its inputs are: ${listNames(modelInputs)}`,
      );
    }
    if (seen.has(name)) throw invalidArgument(`input ${JSON.stringify(name)} appears twice in the request`);
    seen.add(name);
  }
  const missing = modelInputs.filter((input) => !seen.has(input.name));
  if (missing.length > 0) {
    throw invalidArgument(
      `missing ${missing.length === 1 ? 'input' : 'inputs'} ${missing.map((input) => JSON.stringify(input.name)).join(', ')} ` +
        `for model ${modelLabel}; its inputs are: ${listNames(modelInputs)}`,
    );
  }
}

/** Throws invalidArgument for a requested output the model lacks, or one requested twice. */
export function validateRequestedOutputNames(
  requested: readonly { name: string }[] | undefined,
  modelOutputs: readonly { name: string }[],
  modelLabel: string,
): void {
  if (requested === undefined) return;
  const known = new Set(modelOutputs.map((output) => output.name));
  const seen = new Set<string>();
  for (const { name } of requested) {
    if (!known.has(name)) {
      throw invalidArgument(
        `unknown output ${JSON.stringify(name)} for model ${modelLabel}; its outputs are: ${listNames(modelOutputs)}`,
      );
    }
    if (seen.has(name)) throw invalidArgument(`output ${JSON.stringify(name)} is requested twice`);
    seen.add(name);
  }
}

function listNames(tensors: readonly { name: string }[]): string {
  return tensors.length === 0 ? '(none)' : tensors.map((tensor) => tensor.name).join(', ');
}

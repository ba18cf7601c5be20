import type { TensorSpec } from '../runtime/signature.js';

/**
 * One entry of `input:` in config.yaml, after Triton's `input` block: the input's `dims` (batch
 * dimension included), -1 where it varies, and `max_dims`, the upper bound of each varying
 * dimension (-1: unbounded). Requests over a bound are refused before their tensors are decoded.
 */
export interface InputConfig {
  name: string;
  dims: number[];
  max_dims?: number[];
}

const DIMENSION = {
  description: '-1 (varies) or a positive integer',
  oneOf: [{ const: -1 }, { type: 'integer', minimum: 1 }],
} as const;

export const INPUT_CONFIG_SCHEMA = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'dims'],
    properties: {
      name: { type: 'string', minLength: 1 },
      dims: { type: 'array', items: DIMENSION },
      max_dims: { type: 'array', items: DIMENSION },
    },
  },
} as const;

/** Per input name: the shape the config allows, -1 where any size goes, and the upper bounds (-1: none). */
export interface InputBound {
  /** Where the bound comes from, for messages: `config.yaml input[0]`. */
  source: string;
  dims: number[];
  maxDims: number[];
}

/**
 * Checks `input:` against the model's signature once it is loaded, and returns the bounds by input
 * name. A mismatch is a load error naming the key: a config that disagrees with its model must not
 * serve with a bound that means something else.
 */
export function resolveInputBounds(
  config: InputConfig[] | undefined,
  inputs: readonly TensorSpec[],
): Map<string, InputBound> {
  const bounds = new Map<string, InputBound>();
  (config ?? []).forEach((entry, index) => {
    const where = `config.yaml input[${index}]`;
    const spec = inputs.find((input) => input.name === entry.name);
    if (spec === undefined) {
      throw new Error(
        `${where}: the model has no input ${JSON.stringify(entry.name)}; its inputs are ${inputs.map((i) => i.name).join(', ')}`,
      );
    }
    if (bounds.has(entry.name)) throw new Error(`${where}: input ${entry.name} is listed twice`);
    const rank = spec.dims.length;
    const maxDims = entry.max_dims ?? entry.dims;
    if (entry.dims.length !== rank || maxDims.length !== rank) {
      throw new Error(
        `${where}: dims and max_dims need ${rank} entries (the batch dimension included), like the model's [${spec.dims.join(', ')}]`,
      );
    }
    entry.dims.forEach((dim, d) => {
      const modelDim = spec.dims[d];
      if (typeof modelDim === 'number' && dim !== modelDim) {
        throw new Error(`${where}: dims[${d}] is ${dim}, but the model fixes that dimension at ${modelDim}`);
      }
      if (dim !== -1 && maxDims[d] !== dim && maxDims[d] !== -1) {
        throw new Error(`${where}: max_dims[${d}] is ${maxDims[d]}, but dims[${d}] fixes that dimension at ${dim}`);
      }
    });
    bounds.set(entry.name, { source: where, dims: entry.dims, maxDims });
  });
  return bounds;
}

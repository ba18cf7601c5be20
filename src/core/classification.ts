/**
 * Triton's classification extension: an output requested with `parameters.classification: N`
 * (tritonclient's `class_count`; gRPC `class_count` is accepted as well) is answered, per batch item,
 * as its N highest values in descending order, each the BYTES element `"value:index"` or
 * `"value:index:label"` with the label from the file config.yaml's `label_filename` names for that
 * output (one label per line, as Triton's). Values are written with 9 decimals, as Triton writes them.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DATATYPES, type NamedTensor } from '../protocol/datatypes.js';
import { invalidArgument, unavailable } from '../protocol/errors.js';
import type { RequestedOutput } from '../protocol/json-codec.js';
import type { ModelVersion } from '../repository/model-version.js';

const PARAMETER_NAMES = ['classification', 'class_count'] as const;

/** Labels read once per model version and output. */
const labelCache = new WeakMap<ModelVersion, Map<string, string[]>>();

/** The classes an output request asks for, or undefined when it asks for its values. */
export function requestedClassCount(output: RequestedOutput, index: number): number | undefined {
  for (const name of PARAMETER_NAMES) {
    const value: unknown = output.parameters?.[name];
    if (value === undefined) continue;
    const count = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value;
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) {
      throw invalidArgument(
        `outputs[${index}] (${output.name}): parameters.${name} must be a positive integer (the number of classes), got ${JSON.stringify(typeof value === 'bigint' ? String(value) : value)}`,
      );
    }
    return count;
  }
  return undefined;
}

/**
 * The classification of `tensor`: per item of the batch (dimension 0) when the model batches,
 * else of the whole tensor, the `count` highest values as BYTES, shape [items, n] or [n].
 */
export function classify(version: ModelVersion, tensor: NamedTensor, count: number, batched: boolean): NamedTensor {
  const kind = DATATYPES[tensor.datatype].kind;
  if (kind === 'bytes' || kind === 'bool') {
    throw invalidArgument(`output ${tensor.name} is ${tensor.datatype}; classification needs a numeric output`);
  }
  const values = Array.from(tensor.data as ArrayLike<number | bigint>, Number);
  const items = batched && tensor.shape.length > 0 ? tensor.shape[0] : 1;
  const perItem = items === 0 ? 0 : values.length / items;
  const n = Math.min(count, perItem);
  const labels = labelsOf(version, tensor.name);
  const data: string[] = [];
  for (let item = 0; item < items; item++) {
    const row = values.slice(item * perItem, (item + 1) * perItem);
    const order = row.map((_, index) => index).sort((a, b) => row[b] - row[a] || a - b);
    for (const index of order.slice(0, n)) {
      const label = labels?.[index];
      data.push(`${row[index].toFixed(9)}:${index}${label === undefined || label === '' ? '' : `:${label}`}`);
    }
  }
  return { name: tensor.name, datatype: 'BYTES', shape: batched ? [items, n] : [n], data };
}

function labelsOf(version: ModelVersion, output: string): string[] | undefined {
  const file = version.spec.config.label_filename?.[output];
  if (file === undefined) return undefined;
  let byOutput = labelCache.get(version);
  if (byOutput === undefined) labelCache.set(version, (byOutput = new Map()));
  let labels = byOutput.get(output);
  if (labels === undefined) {
    const full = path.resolve(version.spec.configDir, file);
    try {
      labels = readFileSync(full, 'utf8').split(/\r?\n/);
    } catch (error) {
      throw unavailable(
        `model ${version.name}: label_filename for output ${output} (${full}) cannot be read: ${(error as Error).message}`,
      );
    }
    byOutput.set(output, labels);
  }
  return labels;
}

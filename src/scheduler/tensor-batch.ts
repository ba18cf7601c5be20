/**
 * Requests to one batch and the batch's outputs back to requests, along dimension 0. Pure functions
 * over typed arrays: the scheduler decides who runs together, these only move the numbers.
 */
import { DATATYPES, elementCount, type Datatype, type NamedTensor, type TensorData } from '../protocol/datatypes.js';
import { pendingBytesOf } from '../protocol/tensor-bytes.js';

type Settable = { set(source: ArrayLike<number | bigint>, offset: number): void };
type NumericData = Exclude<TensorData, string[]>;

/** Storage for `length` elements of a numeric datatype, which concatAlongBatch fills completely. */
export type TensorAllocator = (datatype: Exclude<Datatype, 'BYTES'>, length: number) => NumericData;

const freshTensorData: TensorAllocator = (datatype, length) => DATATYPES[datatype].create(length) as NumericData;

type NumericArrayConstructor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => NumericData;

/** A view of `length` elements of `datatype` at the start of `buffer` (which may be larger). */
export function tensorDataOver(datatype: Exclude<Datatype, 'BYTES'>, buffer: ArrayBuffer, length: number): NumericData {
  const View = DATATYPES[datatype].create(0).constructor as NumericArrayConstructor;
  return new View(buffer, 0, length);
}

/**
 * What must agree for requests to share a batch: input names, datatypes and every dimension after
 * the first, and the outputs asked for. Undefined when the request cannot join any batch (a scalar
 * input, or inputs that disagree on their first dimension).
 */
export function batchKey(inputs: readonly NamedTensor[], outputs: readonly string[] | undefined): string | undefined {
  const items = inputs[0]?.shape[0];
  if (items === undefined || items < 1) return undefined;
  const parts: string[] = [];
  for (const input of [...inputs].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (input.shape.length === 0 || input.shape[0] !== items) return undefined;
    parts.push(`${input.name}\u0000${input.datatype}\u0000${input.shape.slice(1).join('x')}`);
  }
  const wanted = outputs === undefined ? '*' : [...outputs].sort().join('\u0000');
  return `${parts.join('\u0001')}\u0002${wanted}`;
}

/** The items (first dimension) a request carries; 1 for a scalar input. */
export function itemsOf(inputs: readonly NamedTensor[]): number {
  return inputs[0]?.shape[0] ?? 1;
}

/**
 * One input list for the whole batch: each input concatenated along dimension 0, in request order.
 * A lone request's tensors pass as they are. An input still over unaligned bytes (tensor-bytes.ts)
 * is copied from those bytes straight into the batch's buffer, without an aligned copy first.
 */
export function concatAlongBatch(
  requests: ReadonlyArray<readonly NamedTensor[]>,
  allocate: TensorAllocator = freshTensorData,
): NamedTensor[] {
  if (requests.length === 1) return [...requests[0]];
  return requests[0].map((first) => {
    const parts = requests.map((inputs) => inputs.find((input) => input.name === first.name)!);
    const items = parts.reduce((sum, part) => sum + part.shape[0], 0);
    const shape = [items, ...first.shape.slice(1)];
    let data: TensorData;
    if (first.datatype === 'BYTES') {
      data = parts.flatMap((part) => part.data as string[]);
    } else {
      const batchData = allocate(first.datatype, elementCount(shape));
      const batchBytes = new Uint8Array(batchData.buffer, batchData.byteOffset, batchData.byteLength);
      const byteSize = DATATYPES[first.datatype].byteSize;
      let offset = 0;
      for (const part of parts) {
        const bytes = pendingBytesOf(part);
        // Little-endian bytes of the same datatype are the elements themselves (FP16 as its bits).
        if (bytes !== undefined) {
          batchBytes.set(bytes, offset * byteSize);
          offset += bytes.length / byteSize;
        } else {
          (batchData as Settable).set(part.data as ArrayLike<number | bigint>, offset);
          offset += part.data.length;
        }
      }
      data = batchData;
    }
    return { name: first.name, datatype: first.datatype, shape, data };
  });
}

/**
 * The batch's outputs cut back into one list per request, `items[i]` rows each. Numeric outputs are
 * views into the batch's storage (no copy). Throws when an output's first dimension is not the
 * batch: such a model cannot be batched.
 */
export function splitAlongBatch(outputs: readonly NamedTensor[], items: readonly number[]): NamedTensor[][] {
  const total = items.reduce((sum, n) => sum + n, 0);
  for (const output of outputs) {
    if (output.shape[0] !== total) {
      throw new Error(
        `output ${output.name} has shape [${output.shape.join(', ')}] for a batch of ${total}: its first dimension is not the batch`,
      );
    }
  }
  const result: NamedTensor[][] = items.map(() => []);
  for (const output of outputs) {
    const rowSize = total === 0 ? 0 : output.data.length / total;
    let row = 0;
    items.forEach((count, index) => {
      const start = row * rowSize;
      const end = (row + count) * rowSize;
      const data = Array.isArray(output.data) ? output.data.slice(start, end) : output.data.subarray(start, end);
      result[index].push({
        name: output.name,
        datatype: output.datatype,
        shape: [count, ...output.shape.slice(1)],
        data,
      });
      row += count;
    });
  }
  return result;
}

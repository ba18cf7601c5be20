import { DATATYPES, elementCount, type Datatype, type TensorData } from './datatypes.js';

/**
 * Deterministic data for a tensor, the same on every call: floats in [0, 1) from a fixed linear
 * congruential sequence, FP16 0.5, and zeros (false, empty strings) for every other datatype, so
 * that a model whose integer inputs are indices accepts them. What warmup runs and `bench` sends.
 */
export function syntheticData(datatype: Datatype, shape: readonly number[]): TensorData {
  const data = DATATYPES[datatype].create(elementCount(shape));
  if (data instanceof Float32Array || data instanceof Float64Array) {
    let seed = 12345;
    for (let i = 0; i < data.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[i] = seed / 0x100000000;
    }
  } else if (datatype === 'FP16') {
    (data as Uint16Array).fill(0x3800); // 0.5
  }
  return data;
}

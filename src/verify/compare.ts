/**
 * numpy.allclose semantics, per output: |actual − expected| ≤ atol + rtol·|expected|, NaN equal to
 * NaN. Integer, boolean and string outputs compare exactly (any difference is a mismatch).
 */
import { numberOfFloat16Bits, type Tensor } from '../protocol/datatypes.js';

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Loose enough for float32 kernels that sum in a different order, tight enough to catch a wrong graph. */
export const DEFAULT_TOLERANCE: Tolerance = { atol: 1e-4, rtol: 1e-3 };

export interface TensorDifference {
  elements: number;
  /** Elements outside the tolerance. */
  mismatched: number;
  maxAbsError: number;
  /** Over the elements whose expected value is not 0. */
  maxRelError: number;
}

export function compareTensors(expected: Tensor, actual: Tensor, tolerance: Tolerance): TensorDifference {
  const a = toNumbers(actual);
  const e = toNumbers(expected);
  const exact = expected.datatype !== 'FP32' && expected.datatype !== 'FP64' && expected.datatype !== 'FP16';
  let mismatched = 0;
  let maxAbsError = 0;
  let maxRelError = 0;
  for (let i = 0; i < e.length; i++) {
    const want = e[i];
    const got = a[i];
    if (typeof want === 'string' || typeof got === 'string') {
      if (want !== got) mismatched++;
      continue;
    }
    if (Number.isNaN(want) && Number.isNaN(got)) continue;
    const abs = want === got ? 0 : Math.abs(got - want);
    if (Number.isNaN(abs) || abs > maxAbsError) maxAbsError = Number.isNaN(abs) ? Infinity : abs;
    if (want !== 0) maxRelError = Math.max(maxRelError, abs / Math.abs(want));
    const allowed = exact ? 0 : tolerance.atol + tolerance.rtol * Math.abs(want);
    if (!(abs <= allowed)) mismatched++;
  }
  return { elements: e.length, mismatched, maxAbsError, maxRelError };
}

function toNumbers(tensor: Tensor): ArrayLike<number | string> {
  const { data } = tensor;
  if (Array.isArray(data)) return data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Array.from(data, Number);
  if (tensor.datatype === 'FP16') return Array.from(data as Uint16Array, numberOfFloat16Bits);
  return data as ArrayLike<number>;
}

/**
 * Percentiles, with one definition for the whole project (rolling statistics, `onnx-serve bench`,
 * `optimize`, the bench/ scripts): the nearest rank, i.e. the smallest value with at least p % of
 * the values at or below it, sorted[ceil(p/100 × n) − 1]. Always a measured value, never an
 * interpolation between two.
 */

/** The nearest-rank percentile of values already sorted ascending; null for no values. */
export function nearestRank(sorted: ArrayLike<number>, p: number): number | null {
  const n = sorted.length;
  if (n === 0) return null;
  // (p × n) / 100 rather than p / 100 × n: integer arithmetic, so 95 % of 20 is exactly rank 19.
  return sorted[Math.max(0, Math.ceil((p * n) / 100) - 1)];
}

/** The nearest-rank percentile of values in any order (sorted on a copy); NaN for no values, for reports. */
export function percentileOf(values: readonly number[], p: number): number {
  return (
    nearestRank(
      [...values].sort((a, b) => a - b),
      p,
    ) ?? NaN
  );
}

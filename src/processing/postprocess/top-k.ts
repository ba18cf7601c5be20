/** One class of a classification answer. */
export interface ScoredLabel {
  label: string;
  index: number;
  score: number;
}

export interface TopKOptions {
  k: number;
  /** Class names by index; a class without one is named by its index. */
  labels?: readonly string[];
  /** Apply softmax to each row first; by default only when the row is not already a distribution. */
  softmax?: boolean;
}

/**
 * The k best classes of each row of an N×C score tensor, best first. Models that end in softmax
 * (PP-OCR's classifier) already give probabilities; models that end in logits (torchvision) do not.
 */
export function topK(scores: ArrayLike<number>, rows: number, classes: number, options: TopKOptions): ScoredLabel[][] {
  const result: ScoredLabel[][] = [];
  for (let n = 0; n < rows; n++) {
    let row = Array.from({ length: classes }, (_, c) => Number(scores[n * classes + c]));
    if (options.softmax ?? !isDistribution(row)) row = softmax(row);
    const order = row.map((_, c) => c).sort((a, b) => row[b] - row[a] || a - b);
    result.push(
      order
        .slice(0, options.k)
        .map((index) => ({ label: options.labels?.[index] ?? String(index), index, score: row[index] })),
    );
  }
  return result;
}

function isDistribution(row: number[]): boolean {
  let sum = 0;
  for (const p of row) {
    if (!(p >= 0 && p <= 1)) return false;
    sum += p;
  }
  return Math.abs(sum - 1) < 1e-3;
}

export function softmax(row: number[]): number[] {
  const max = Math.max(...row);
  const exps = row.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

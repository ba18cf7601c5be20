/**
 * `onnx-serve bench --tune`: a small grid over instances × intra-op threads × max_batch_size ×
 * max_queue_delay, one closed-loop level per cell, and the cell with the highest throughput whose
 * p99 stays within the bound. Pure: the CLI measures the cells, these decide which and what to print.
 */
import type { LevelResult } from './load-generator.js';

export interface TuningCell {
  instances: number;
  threads: number;
  maxBatchSize: number;
  maxQueueDelayMs: number;
}

export interface TunedCell {
  cell: TuningCell;
  result: LevelResult;
}

/** Batch sizes and delays tried on every instances × threads split. */
export const TUNING_BATCH_SIZES = [4, 8, 16];
export const TUNING_QUEUE_DELAYS_MS = [0, 2];

/**
 * The cells for `cores` usable cores: every core busy (instances × threads = cores) as one instance
 * with all threads, one instance per core, and, from 4 cores, instances of 2 threads; each with
 * TUNING_BATCH_SIZES × TUNING_QUEUE_DELAYS_MS. At most 18 cells (12 on 2 cores).
 */
export function tuningGrid(cores: number): TuningCell[] {
  const splits = new Map<string, [number, number]>();
  for (const [instances, threads] of [
    [1, cores],
    [cores, 1],
    ...(cores >= 4 ? [[Math.floor(cores / 2), 2]] : []),
  ] as Array<[number, number]>) {
    splits.set(`${instances}x${threads}`, [instances, threads]);
  }
  const cells: TuningCell[] = [];
  for (const [instances, threads] of splits.values()) {
    for (const maxBatchSize of TUNING_BATCH_SIZES) {
      for (const maxQueueDelayMs of TUNING_QUEUE_DELAYS_MS)
        cells.push({ instances, threads, maxBatchSize, maxQueueDelayMs });
    }
  }
  return cells;
}

/**
 * The cell with the highest throughput among those without errors whose p99 is within `p99Ms`
 * (any p99 when undefined); undefined when none qualifies.
 */
export function bestCell(cells: readonly TunedCell[], p99Ms: number | undefined): TunedCell | undefined {
  let best: TunedCell | undefined;
  for (const tuned of cells) {
    if (tuned.result.errors > 0 || tuned.result.requests === 0) continue;
    if (p99Ms !== undefined && tuned.result.p99Ms > p99Ms) continue;
    if (best === undefined || tuned.result.throughput > best.result.throughput) best = tuned;
  }
  return best;
}

/** The config.yaml keys a cell stands for, ready to paste. */
export function tuningYaml(cell: TuningCell): string {
  return [
    `instances: ${cell.instances}`,
    `session: { intra_op_threads: ${cell.threads} }`,
    `max_batch_size: ${cell.maxBatchSize}`,
    `dynamic_batching: { max_queue_delay_ms: ${cell.maxQueueDelayMs} }`,
  ].join('\n');
}

/** One line per measured cell, for the tuning report. */
export function describeCell({ cell, result }: TunedCell): string {
  const split = `${cell.instances} instance${cell.instances === 1 ? '' : 's'} × ${cell.threads} thread${cell.threads === 1 ? '' : 's'}`;
  const errors = result.errors > 0 ? `, ${result.errors} errors` : '';
  return (
    `${split}, max_batch_size ${cell.maxBatchSize}, delay ${cell.maxQueueDelayMs} ms: ` +
    `${result.throughput.toFixed(1)} infer/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, ` +
    `batch ${result.batchSize?.toFixed(1) ?? '-'}${errors}`
  );
}

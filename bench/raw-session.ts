/** The limit a server is compared with: raw session.run on this thread, no server in between. */
import * as ort from 'onnxruntime-node';
import { syntheticInputs } from '../src/bench/targets.js';
import { nearestRank } from '../src/observability/percentile.js';
import { cpuBudget } from '../src/runtime/cpu.js';

export interface RawResult {
  batch: number;
  spinning: boolean;
  /** Intra-op threads. */
  threads: number;
  /** Items per second. */
  throughput: number;
  /** Median time of one run, in ms. */
  p50: number;
}

/**
 * Raw session.run, back to back on this thread for `seconds`: items per second and p50 per run. With
 * `spinning` idle ORT threads busy-wait (onnxruntime's default); onnx-serve turns that off. The limit
 * is the better of the two. `threads`: intra-op threads, the usable cores unless given (a model as
 * small as text-orientation runs batch 1 faster on one).
 */
export async function rawSessionRun(
  file: string,
  shape: number[],
  batch: number,
  spinning: boolean,
  seconds: number,
  threads = cpuBudget().usable,
): Promise<RawResult> {
  const spin = spinning ? '1' : '0';
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: threads,
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  });
  const name = session.inputNames[0];
  const [input] = syntheticInputs([{ name, datatype: 'FP32' }], { [name]: [batch, ...shape.slice(1)] });
  const feeds = { [name]: new ort.Tensor('float32', input.data as Float32Array, input.shape) };
  for (let i = 0; i < 5; i++) await session.run(feeds);
  const times: number[] = [];
  const begin = performance.now();
  while (performance.now() - begin < seconds * 1000) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  const elapsed = (performance.now() - begin) / 1000;
  await session.release();
  times.sort((a, b) => a - b);
  return { batch, spinning, threads, throughput: (times.length * batch) / elapsed, p50: nearestRank(times, 50)! };
}

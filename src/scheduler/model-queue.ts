/**
 * The queue in front of one model version's instances: bounded (a full queue answers 503 with
 * Retry-After at once), one batch in flight per instance, and batches formed by the dynamic batcher
 * from what waits while the instances are busy. Sits between runInference and WorkerPool.run, so
 * every transport gets the same batching, bound and timings.
 */
import type { Logger } from 'pino';
import type { NamedTensor } from '../protocol/datatypes.js';
import { overloaded, unavailable } from '../protocol/errors.js';
import type { ModelSignature } from '../runtime/signature.js';
import type { RunResult } from '../runtime/worker-pool.js';
import type { BatchingPolicy } from './batching-policy.js';
import { nextBatch, type Queued } from './dynamic-batcher.js';
import { batchKey, concatAlongBatch, itemsOf, splitAlongBatch } from './tensor-batch.js';

/** Where a request went: the worker pool's run. */
export interface BatchRunner {
  run(inputs: NamedTensor[], outputs?: string[]): Promise<RunResult>;
}

export interface ScheduledResult {
  outputs: NamedTensor[];
  /** From submission until the outputs were back, minus computeMs: queueing, batching, moving tensors. */
  queueMs: number;
  /** session.run time of the batch the request ran in. */
  computeMs: number;
  /** Items in that batch (this request's and the others'). */
  batchSize: number;
}

interface Request extends Queued {
  inputs: NamedTensor[];
  outputs: string[] | undefined;
  resolve: (result: ScheduledResult) => void;
  reject: (error: Error) => void;
}

export interface ModelQueueOptions {
  label: string;
  runner: BatchRunner;
  instances: number;
  policy: BatchingPolicy;
  signature: ModelSignature;
  /** True when config.yaml set max_batch_size itself: refusing it is then a warning, not a note. */
  batchingRequested: boolean;
  log: Logger;
}

export class ModelQueue {
  readonly #label: string;
  readonly #runner: BatchRunner;
  readonly #instances: number;
  readonly #policy: BatchingPolicy;
  readonly #log: Logger;
  #queue: Request[] = [];
  #running = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #closed = false;
  #idle: Array<() => void> = [];

  constructor(options: ModelQueueOptions) {
    this.#label = options.label;
    this.#runner = options.runner;
    this.#instances = options.instances;
    this.#log = options.log;
    this.#policy = { ...options.policy };
    const refusal = this.#policy.maxBatchSize > 0 ? batchingRefusal(options.signature) : undefined;
    if (refusal !== undefined) this.#refuseBatching(refusal, options.batchingRequested ? 'warn' : 'info');
  }

  /** Largest batch this queue forms: 0 once batching is off (by config or because the model cannot batch). */
  get maxBatchSize(): number {
    return this.#policy.maxBatchSize;
  }

  /** Requests waiting for an instance. */
  get waiting(): number {
    return this.#queue.length;
  }

  run(inputs: NamedTensor[], outputs?: string[]): Promise<ScheduledResult> {
    if (this.#closed) return Promise.reject(unavailable(`model ${this.#label} is unloading`));
    if (this.#queue.length >= this.#policy.maxQueueSize) {
      return Promise.reject(
        overloaded(
          `model ${this.#label} is overloaded: ${this.#queue.length} requests are queued (max_queue_size ${this.#policy.maxQueueSize}); retry later`,
        ),
      );
    }
    const key = this.#policy.maxBatchSize > 0 ? batchKey(inputs, outputs) : undefined;
    return new Promise<ScheduledResult>((resolve, reject) => {
      this.#queue.push({
        key,
        items: itemsOf(inputs),
        enqueuedAt: performance.now(),
        inputs,
        outputs,
        resolve,
        reject,
      });
      this.#pump();
    });
  }

  /**
   * Resolves once nothing waits and nothing runs. A version retired by a hot swap drains before its
   * pool closes, so requests that resolved the old version just before the swap are still answered.
   */
  drain(): Promise<void> {
    if (this.#queue.length === 0 && this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Refuses what still waits; batches in flight finish (the pool decides their fate). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    const waiting = this.#queue;
    this.#queue = [];
    for (const request of waiting) request.reject(unavailable(`model ${this.#label} was unloaded`));
  }

  #pump(): void {
    while (this.#running < this.#instances && this.#queue.length > 0) {
      const now = performance.now();
      const decision = nextBatch(this.#queue, this.#policy, now);
      if ('waitUntil' in decision) {
        this.#wakeAt(decision.waitUntil, now);
        return;
      }
      const taken = new Set(decision.run);
      const batch = decision.run.map((index) => this.#queue[index]);
      this.#queue = this.#queue.filter((_, index) => !taken.has(index));
      void this.#dispatch(batch);
    }
  }

  #wakeAt(at: number, now: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        this.#pump();
      },
      Math.max(0, at - now),
    );
  }

  async #dispatch(batch: Request[]): Promise<void> {
    this.#running++;
    try {
      const inputs = concatAlongBatch(batch.map((request) => request.inputs));
      const result = await this.#runner.run(inputs, batch[0].outputs);
      const batchSize = batch.reduce((sum, request) => sum + request.items, 0);
      const finish = (request: Request, outputs: NamedTensor[]) => {
        const totalMs = performance.now() - request.enqueuedAt;
        request.resolve({
          outputs,
          computeMs: result.computeMs,
          queueMs: Math.max(0, totalMs - result.computeMs),
          batchSize,
        });
      };
      if (batch.length === 1) {
        finish(batch[0], result.outputs);
        return;
      }
      let split: NamedTensor[][];
      try {
        split = splitAlongBatch(
          result.outputs,
          batch.map((request) => request.items),
        );
      } catch (error) {
        // The signature promised a batch dimension the outputs do not have: run these again alone.
        this.#refuseBatching((error as Error).message, 'warn');
        for (const request of batch) request.key = undefined;
        this.#queue.unshift(...batch);
        return;
      }
      batch.forEach((request, index) => finish(request, split[index]));
    } catch (error) {
      for (const request of batch) request.reject(error as Error);
    } finally {
      this.#running--;
      this.#pump();
      if (this.#queue.length === 0 && this.#running === 0) {
        for (const resolve of this.#idle.splice(0)) resolve();
      }
    }
  }

  #refuseBatching(reason: string, level: 'warn' | 'info'): void {
    this.#policy.maxBatchSize = 0;
    for (const request of this.#queue) request.key = undefined;
    this.#log[level]({ model: this.#label, reason }, `model ${this.#label}: dynamic batching off: ${reason}`);
  }
}

/** Why a model's signature rules out batching along dimension 0, or undefined when it allows it. */
export function batchingRefusal(signature: ModelSignature): string | undefined {
  for (const [kind, specs] of [
    ['input', signature.inputs],
    ['output', signature.outputs],
  ] as const) {
    for (const spec of specs) {
      const first = spec.dims[0];
      if (first === undefined) return `${kind} ${spec.name} is a scalar, with no batch dimension`;
      if (typeof first === 'number') return `${kind} ${spec.name} has a fixed first dimension ${first}, not a batch`;
    }
  }
  return undefined;
}

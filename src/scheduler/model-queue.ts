/**
 * The queue in front of one model version's instances: bounded (a full queue answers 503 with
 * Retry-After at once), one batch in flight per instance, and batches formed by the dynamic batcher
 * from what waits while the instances are busy. Sits between runInference and WorkerPool.run, so
 * every transport gets the same batching, bound and timings.
 */
import type { Logger } from 'pino';
import { DATATYPES, type NamedTensor } from '../protocol/datatypes.js';
import { cancelled, overloaded, timedOut, unavailable } from '../protocol/errors.js';
import type { ModelSignature } from '../runtime/signature.js';
import type { RunResult } from '../runtime/worker-pool.js';
import type { BatchingPolicy } from './batching-policy.js';
import { nextBatch, type Queued } from './dynamic-batcher.js';
import { bufferPool } from '../runtime/buffer-pool.js';
import {
  batchKey,
  concatAlongBatch,
  itemsOf,
  splitAlongBatch,
  tensorDataOver,
  type TensorAllocator,
} from './tensor-batch.js';

/**
 * A batch's tensors in memory from the BufferPool: they go to the worker by transfer and come back
 * with the result, so a stream of batches allocates no new tensor memory (src/runtime/buffer-pool.ts).
 */
const pooledTensorData: TensorAllocator = (datatype, length) => {
  const buffer = bufferPool.take(length * DATATYPES[datatype].byteSize);
  return buffer === undefined
    ? (DATATYPES[datatype].create(length) as ReturnType<TensorAllocator>)
    : tensorDataOver(datatype, buffer, length);
};

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
  /** performance.now() past which it is dropped unrun; Infinity when it has no deadline. */
  deadline: number;
  /** Its timeout in µs and where it came from, for the 504 message. */
  timeout?: Deadline;
  /** Aborted when the client goes away; watched while the request waits in the queue. */
  signal?: CancelSignal;
  /** Its deadline timer while it waits (see #watch). */
  timer?: NodeJS.Timeout;
  /** Its abort listener while it waits (see #watch). */
  onAbort?: () => void;
}

/**
 * What the queue needs of a cancellation: an AbortSignal has it, and so has the HTTP route's lighter
 * per-request handle (server/client-gone.ts), which needs no AbortController.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A request's timeout, already resolved against the model's queue policy (see effectiveTimeout). */
export interface Deadline {
  microseconds: number;
  source: 'request' | 'model default';
}

/** What a caller may attach to one request besides its tensors. */
export interface RunOptions {
  /** Dropped with 504 if still queued this long after submission. */
  timeout?: Deadline;
  /** Aborting it (the client went away) takes the request out of the queue unrun. */
  signal?: CancelSignal;
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

  /** The 503 a request would get now because the queue is full, or undefined when there is room. */
  overload(): Error | undefined {
    if (this.#queue.length < this.#policy.maxQueueSize) return undefined;
    return overloaded(
      `model ${this.#label} is overloaded: ${this.#queue.length} requests are queued (max_queue_size ${this.#policy.maxQueueSize}); retry later`,
    );
  }

  /** The timeout a request gets under this model's queue policy, given the one it asked for (µs, 0 = none). */
  effectiveTimeout(requestedMicroseconds: number | undefined): Deadline | undefined {
    return effectiveTimeout(this.#policy, requestedMicroseconds);
  }

  run(inputs: NamedTensor[], outputs?: string[], options: RunOptions = {}): Promise<ScheduledResult> {
    if (this.#closed) return Promise.reject(unavailable(`model ${this.#label} is unloading`));
    const full = this.overload();
    if (full !== undefined) return Promise.reject(full);
    const { signal, timeout } = options;
    if (signal?.aborted) return Promise.reject(this.#cancelled(0));
    const key = this.#policy.maxBatchSize > 0 ? batchKey(inputs, outputs) : undefined;
    return new Promise<ScheduledResult>((resolve, reject) => {
      const enqueuedAt = performance.now();
      const request: Request = {
        key,
        items: itemsOf(inputs),
        enqueuedAt,
        inputs,
        outputs,
        resolve,
        reject,
        deadline: timeout === undefined ? Infinity : enqueuedAt + timeout.microseconds / 1000,
      };
      if (timeout !== undefined) request.timeout = timeout;
      if (signal !== undefined) request.signal = signal;
      this.#queue.push(request);
      this.#pump();
      // Watched only if it still waits: one dispatched at once (an idle instance) needs no timer,
      // listener or closure, which at low load is every request.
      if (this.#queue.length > 0 && this.#queue[this.#queue.length - 1] === request) this.#watch(request);
    });
  }

  /**
   * Arms the deadline timer and the abort listener of a request waiting in the queue; #unwatch ends
   * both when it leaves the queue.
   */
  #watch(request: Request): void {
    const { signal } = request;
    if (request.deadline !== Infinity) {
      request.timer = setTimeout(
        () => this.#drop(request, this.#expired(request, performance.now())),
        Math.max(0, request.deadline - performance.now()),
      );
    }
    if (signal !== undefined) {
      request.onAbort = () => this.#drop(request, this.#cancelled(performance.now() - request.enqueuedAt));
      signal.addEventListener('abort', request.onAbort, { once: true });
    }
  }

  #unwatch(request: Request): void {
    if (request.timer !== undefined) {
      clearTimeout(request.timer);
      request.timer = undefined;
    }
    if (request.onAbort !== undefined) {
      request.signal?.removeEventListener('abort', request.onAbort);
      request.onAbort = undefined;
    }
  }

  /** Takes a request out of the queue unrun (deadline passed or client gone); a no-op once it was dispatched. */
  #drop(request: Request, error: Error): void {
    const index = this.#queue.indexOf(request);
    if (index === -1) return;
    this.#queue.splice(index, 1);
    this.#unwatch(request);
    request.reject(error);
    this.#settleIdle();
  }

  #expired(request: Request, now: number): Error {
    const { microseconds, source } = request.timeout!;
    const waitedMs = Math.round((now - request.enqueuedAt) * 1000) / 1000;
    return timedOut(
      `request to model ${this.#label} timed out after waiting ${waitedMs} ms in the queue: its deadline was ${microseconds} µs (${source === 'request' ? 'parameters.timeout' : 'dynamic_batching.default_timeout_microseconds'}); it was not run`,
    );
  }

  #cancelled(waitedMs: number): Error {
    return cancelled(
      `request to model ${this.#label} was cancelled by the client after waiting ${Math.round(waitedMs * 1000) / 1000} ms in the queue; it was not run`,
    );
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
    for (const request of waiting) {
      this.#unwatch(request);
      request.reject(unavailable(`model ${this.#label} was unloaded`));
    }
  }

  /** Rejects every queued request whose deadline has passed (timers can fire late under load). */
  #expire(now: number): void {
    if (!this.#queue.some((request) => request.deadline <= now)) return;
    const expired = this.#queue.filter((request) => request.deadline <= now);
    this.#queue = this.#queue.filter((request) => request.deadline > now);
    for (const request of expired) {
      this.#unwatch(request);
      request.reject(this.#expired(request, now));
    }
  }

  #settleIdle(): void {
    if (this.#queue.length === 0 && this.#running === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  #pump(): void {
    while (this.#running < this.#instances && this.#queue.length > 0) {
      const now = performance.now();
      // A batch never carries a request whose deadline has passed.
      this.#expire(now);
      if (this.#queue.length === 0) break;
      const decision = nextBatch(this.#queue, this.#policy, now);
      if ('waitUntil' in decision) {
        this.#wakeAt(decision.waitUntil, now);
        return;
      }
      const taken = new Set(decision.run);
      const batch = decision.run.map((index) => this.#queue[index]);
      this.#queue = this.#queue.filter((_, index) => !taken.has(index));
      for (const request of batch) this.#unwatch(request);
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
      const inputs = concatAlongBatch(
        batch.map((request) => request.inputs),
        pooledTensorData,
      );
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
        this.#requeue(batch);
        return;
      }
      batch.forEach((request, index) => finish(request, split[index]));
    } catch (error) {
      for (const request of batch) request.reject(error as Error);
    } finally {
      this.#running--;
      this.#pump();
      this.#settleIdle();
    }
  }

  /**
   * Puts a batch that could not be split back at the head of the queue (its requests are the oldest),
   * watched again for their deadlines and clients as any queued request is. The bound holds: the
   * newest waiting requests beyond it get the 503 they would have got had they arrived now.
   */
  #requeue(batch: Request[]): void {
    const now = performance.now();
    for (const request of batch) request.key = undefined;
    this.#queue.unshift(...batch);
    for (const request of batch) {
      if (request.signal?.aborted) this.#drop(request, this.#cancelled(now - request.enqueuedAt));
      else this.#watch(request);
    }
    const excess = this.#queue.splice(this.#policy.maxQueueSize);
    const full = this.overload();
    for (const request of excess) {
      this.#unwatch(request);
      request.reject(full!);
    }
  }

  #refuseBatching(reason: string, level: 'warn' | 'info'): void {
    this.#policy.maxBatchSize = 0;
    for (const request of this.#queue) request.key = undefined;
    this.#log[level]({ model: this.#label, reason }, `model ${this.#label}: dynamic batching off: ${reason}`);
  }
}

/**
 * Triton's ModelQueuePolicy: the model's default_timeout_microseconds (0 = none) applies unless the
 * request asks for a shorter one and allow_timeout_override is on. No default counts as no limit, so
 * with override allowed any request timeout applies.
 */
export function effectiveTimeout(
  policy: BatchingPolicy,
  requestedMicroseconds: number | undefined,
): Deadline | undefined {
  const fallback: Deadline | undefined =
    policy.defaultTimeoutMicroseconds > 0
      ? { microseconds: policy.defaultTimeoutMicroseconds, source: 'model default' }
      : undefined;
  if (!policy.allowTimeoutOverride || requestedMicroseconds === undefined || requestedMicroseconds === 0)
    return fallback;
  if (fallback !== undefined && requestedMicroseconds >= fallback.microseconds) return fallback;
  return { microseconds: requestedMicroseconds, source: 'request' };
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

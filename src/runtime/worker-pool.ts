import { Worker } from 'node:worker_threads';
import type { NamedTensor } from '../protocol/datatypes.js';
import { internal, unavailable } from '../protocol/errors.js';
import { CrashLoopDetector, type CrashLoopPolicy, type SupervisorEvents } from './instance-supervisor.js';
import type { WorkerCommand, WorkerEvent, WorkerSetup } from './worker-messages.js';

export type PoolReady = Extract<WorkerEvent, { type: 'ready' }> & { instances: number };

export interface RunResult {
  outputs: NamedTensor[];
  /** Time inside session.run, measured in the worker. */
  computeMs: number;
  /** Time from submission until the outputs were back, minus computeMs: waiting and moving tensors. */
  queueMs: number;
}

interface Pending {
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
  submitted: number;
}

interface Instance {
  index: number;
  worker: Worker;
  pending: Map<number, Pending>;
  /** Loaded and warmed up: takes requests. */
  ready: boolean;
  exited: boolean;
  /** Called when the last pending request is settled (close waits for it). */
  onIdle?: () => void;
}

// Built, the worker is the .js next to this file; run from the TypeScript sources, a small loader starts it.
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './inference-worker.dev.mjs' : './inference-worker.js',
  import.meta.url,
);

/**
 * The instances of one model version: a worker thread each, one session each. A request goes to
 * the instance with the fewest requests in flight; tensors move by transfer, not by copy.
 */
export class WorkerPool {
  readonly #setup: WorkerSetup;
  readonly #size: number;
  #instances: Instance[] = [];
  #nextId = 1;
  #closing = false;
  readonly #events: SupervisorEvents;
  readonly #crashes: CrashLoopDetector;
  /** Replacements being started; requests arriving while no instance is up wait for one. */
  #replacing = 0;
  #waiting: (() => void)[] = [];
  /** Set once the pool has given up after a crash loop. */
  #failure?: string;

  constructor(setup: WorkerSetup, instances: number, events: SupervisorEvents = {}, crashLoop?: CrashLoopPolicy) {
    this.#setup = setup;
    this.#size = instances;
    this.#events = events;
    this.#crashes = new CrashLoopDetector(crashLoop);
  }

  /** Starts every instance and resolves once all are loaded and warmed up; rejects with the first failure. */
  async start(): Promise<PoolReady> {
    const starts = Array.from({ length: this.#size }, (_, index) => this.#spawn(index));
    const settled = await Promise.allSettled(starts);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) {
      await this.close();
      throw failed.reason as Error;
    }
    const ready = (settled as PromiseFulfilledResult<Extract<WorkerEvent, { type: 'ready' }>>[]).map((s) => s.value);
    return { ...ready[0], loadMs: Math.max(...ready.map((r) => r.loadMs)), instances: this.#size };
  }

  /** Requests in flight across all instances. */
  get inFlight(): number {
    return this.#instances.reduce((sum, instance) => sum + instance.pending.size, 0);
  }

  /**
   * The threads of the running instances, for diagnostics and fault-injection tests: a thread that
   * stops is handled like any crash (its requests fail, a replacement starts).
   */
  get threads(): readonly Worker[] {
    return this.#instances.filter((i) => i.ready && !i.exited).map((i) => i.worker);
  }

  run(inputs: NamedTensor[], outputs?: string[]): Promise<RunResult> {
    const instance = this.#leastBusy();
    if (instance === undefined) {
      if (this.#failure !== undefined) {
        return Promise.reject(unavailable(`${this.#setup.label} is unavailable: ${this.#failure}`));
      }
      if (this.#replacing > 0 && !this.#closing) {
        return new Promise<void>((resolve) => this.#waiting.push(resolve)).then(() => this.run(inputs, outputs));
      }
      return Promise.reject(unavailable(`${this.#setup.label} has no running instance`));
    }
    const id = this.#nextId++;
    const transfer: ArrayBuffer[] = [];
    const movable = inputs.map((tensor) => {
      if (!ArrayBuffer.isView(tensor.data)) return tensor;
      const data = ownsWholeBuffer(tensor.data) ? tensor.data : tensor.data.slice();
      transfer.push(data.buffer as ArrayBuffer);
      return { ...tensor, data };
    });
    const command: WorkerCommand = { type: 'run', id, inputs: movable };
    if (outputs !== undefined) command.outputs = outputs;
    return new Promise<RunResult>((resolve, reject) => {
      instance.pending.set(id, { resolve, reject, submitted: performance.now() });
      instance.worker.postMessage(command, transfer);
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#wakeWaiting();
    const instances = this.#instances;
    this.#instances = [];
    await Promise.all(
      instances.map(async (instance) => {
        if (instance.exited) return;
        // Runs are asynchronous in onnxruntime-node: releasing the session under one would lose its answer.
        if (instance.pending.size > 0) await new Promise<void>((resolve) => (instance.onIdle = resolve));
        if (instance.exited) return;
        const exited = new Promise<void>((resolve) => instance.worker.once('exit', () => resolve()));
        instance.worker.postMessage({ type: 'close' } satisfies WorkerCommand);
        const timer = setTimeout(() => void instance.worker.terminate(), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  #leastBusy(): Instance | undefined {
    let best: Instance | undefined;
    for (const instance of this.#instances) {
      if (instance.exited || !instance.ready) continue;
      if (best === undefined || instance.pending.size < best.pending.size) best = instance;
    }
    return best;
  }

  #spawn(index: number): Promise<Extract<WorkerEvent, { type: 'ready' }>> {
    const worker = new Worker(WORKER_URL, { workerData: this.#setup, name: `${this.#setup.label}#${index}` });
    const instance: Instance = { index, worker, pending: new Map(), ready: false, exited: false };
    this.#instances.push(instance);
    let lastError: Error | undefined;

    return new Promise((resolve, reject) => {
      worker.on('message', (event: WorkerEvent) => {
        switch (event.type) {
          case 'ready':
            instance.ready = true;
            resolve(event);
            break;
          case 'failed':
            reject(new Error(event.error));
            break;
          case 'result': {
            const pending = instance.pending.get(event.id);
            instance.pending.delete(event.id);
            const roundTrip = pending === undefined ? event.computeMs : performance.now() - pending.submitted;
            pending?.resolve({
              outputs: event.outputs,
              computeMs: event.computeMs,
              queueMs: Math.max(0, roundTrip - event.computeMs),
            });
            if (instance.pending.size === 0) instance.onIdle?.();
            break;
          }
          case 'error':
            instance.pending.get(event.id)?.reject(internal(`onnxruntime failed: ${event.error}`));
            instance.pending.delete(event.id);
            if (instance.pending.size === 0) instance.onIdle?.();
            break;
        }
      });
      worker.on('error', (error) => {
        lastError = error;
      });
      worker.on('exit', (code) => {
        instance.exited = true;
        const cause = lastError?.message ?? `its thread exited with code ${code}`;
        reject(new Error(`instance ${index} of ${this.#setup.label} stopped while loading: ${cause}`));
        for (const pending of instance.pending.values()) {
          pending.reject(internal(`instance ${index} of ${this.#setup.label} stopped during inference: ${cause}`));
        }
        instance.pending.clear();
        instance.onIdle?.();
        if (instance.ready && !this.#closing) {
          this.#instances = this.#instances.filter((i) => i !== instance);
          this.#replace(index, cause);
        }
      });
    });
  }

  /** Starts a replacement for a dead instance, or gives up on a crash loop. */
  #replace(index: number, cause: string): void {
    this.#events.instanceCrashed?.({ instance: index, cause });
    const loop = this.#crashes.record(cause);
    if (loop !== undefined) {
      this.#failure = loop;
      this.#events.gaveUp?.(loop);
      void this.close();
      return;
    }
    this.#replacing++;
    this.#spawn(index)
      .then(
        (ready) =>
          this.#events.instanceReplaced?.({ instance: index, loadMs: ready.loadMs, warmupMs: ready.warmup.ms }),
        (error: unknown) => {
          this.#instances = this.#instances.filter((i) => i.index !== index || i.ready);
          if (!this.#closing) this.#replace(index, `its replacement failed to start: ${(error as Error).message}`);
        },
      )
      .finally(() => {
        this.#replacing--;
        this.#wakeWaiting();
      });
  }

  /** Requests that waited for a replacement try again (and get an instance, or the reason there is none). */
  #wakeWaiting(): void {
    for (const wake of this.#waiting.splice(0)) wake();
  }
}

function ownsWholeBuffer(view: ArrayBufferView): boolean {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer;
}

/**
 * The server-wide pool of worker threads. Each thread hosts the sessions of many model instances
 * (a thread costs ~12 MB and a V8 isolate; a session only its weights and arena), so a server with
 * hundreds of models runs on as many threads as its CPU budget, not one per instance. Per-model
 * scheduling stays in the model's queue; a thread takes the runs of all its sessions in arrival order.
 */
import { Worker } from 'node:worker_threads';
import type { NamedTensor } from '../protocol/datatypes.js';
import { internal } from '../protocol/errors.js';
import { bufferPool, isSurrendered } from './buffer-pool.js';
import { checkNice, DEFAULT_WORKER_NICE } from './thread-priority.js';
import type { InferenceWorkerData, WorkerCommand, WorkerEvent, WorkerSetup } from './worker-messages.js';

/** The young generation of each inference thread's V8 heap, in MiB (see #spawn). */
const WORKER_YOUNG_GENERATION_MB = 8;

export { surrenderBuffer } from './buffer-pool.js';

export type SessionReady = Extract<WorkerEvent, { type: 'ready' }>;

export interface RunResult {
  outputs: NamedTensor[];
  /** Time inside session.run, measured in the worker. */
  computeMs: number;
  /** Time from submission until the outputs were back, minus computeMs: waiting and moving tensors. */
  queueMs: number;
}

/** Who a hosted session belongs to: told when the thread holding it dies. */
export interface SessionOwner {
  /** How runs and loads of this session name it in errors, e.g. "instance 0 of cls:1". */
  readonly description: string;
  /** The thread died with the session loaded; the session is gone (its runs were already rejected). */
  lost(cause: string): void;
}

/** One loaded session: the thread that holds it and its id there. */
export interface SessionRef {
  readonly thread: HostThread;
  readonly id: number;
}

interface PendingRun {
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
  submitted: number;
  owner: SessionOwner;
}

interface PendingLoad {
  resolve: (ready: SessionReady) => void;
  reject: (error: Error) => void;
  owner: SessionOwner;
}

/** One worker thread and what it holds. */
export class HostThread {
  readonly slot: number;
  readonly worker: Worker;
  /** Loaded sessions by id. */
  readonly sessions = new Map<number, SessionOwner>();
  readonly loads = new Map<number, PendingLoad>();
  readonly runs = new Map<number, PendingRun>();
  readonly releases = new Map<number, () => void>();
  exited = false;
  /** Resolves once the thread has loaded onnxruntime and takes commands (or has exited). */
  readonly started: Promise<void>;
  #markStarted!: () => void;

  constructor(slot: number, worker: Worker) {
    this.slot = slot;
    this.worker = worker;
    this.started = new Promise((resolve) => (this.#markStarted = resolve));
  }

  /** Waiting for `primed` (SharedWorkers.startAll with prime). */
  readonly primes: (() => void)[] = [];

  /** The thread said it started, or exited: either way nothing is left to wait for. */
  markStarted(): void {
    this.#markStarted();
  }

  /** Sessions held and being loaded: what placement balances. */
  get load(): number {
    return this.sessions.size + this.loads.size;
  }
}

export interface SharedWorkersEvents {
  /** A thread died; the sessions it held are lost and their owners reload them elsewhere. */
  threadExited?(event: { slot: number; cause: string; sessions: string[] }): void;
  /** A thread could not run below the main thread (said once, for the first thread that fails). */
  priorityUnchanged?(reason: string): void;
}

// Built, the worker is the .js next to this file; run from the TypeScript sources, a small loader starts it.
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './inference-worker.dev.mjs' : './inference-worker.js',
  import.meta.url,
);

export class SharedWorkers {
  readonly size: number;
  /** How far below the main thread the threads run (thread-priority.ts). */
  readonly nice: number;
  readonly #name: string;
  readonly #events: SharedWorkersEvents;
  readonly #workerData: InferenceWorkerData;
  /** Threads by slot; a slot is empty until first needed and again after its thread died. */
  readonly #threads: (HostThread | undefined)[];
  /** A thread that could not lower its priority is told once: the others fail the same way. */
  #priorityFailureTold = false;
  #nextSession = 1;
  #nextRun = 1;
  #closing = false;
  #closed?: Promise<void>;

  constructor(size: number, options: { name?: string; events?: SharedWorkersEvents; nice?: number } = {}) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`workers must be a positive integer, got ${size}`);
    const nice = options.nice ?? DEFAULT_WORKER_NICE;
    checkNice(nice);
    this.size = size;
    this.nice = nice;
    this.#workerData = { nice };
    this.#name = options.name ?? 'onnx-serve worker';
    this.#events = options.events ?? {};
    this.#threads = Array.from({ length: size }, () => undefined);
  }

  /** The running threads (for diagnostics and fault-injection tests). */
  get threads(): readonly HostThread[] {
    return this.#threads.filter((t): t is HostThread => t !== undefined && !t.exited);
  }

  /**
   * Starts the thread of every empty slot now rather than at its first session; resolves once every
   * thread has loaded onnxruntime. With `prime`, each thread also creates and runs a one-node model
   * (prime-model.ts), so onnxruntime's one-off setup is paid before any model loads and a model's
   * measured size is its own. A thread that fails to prime (it never should) serves all the same.
   */
  async startAll(options: { prime?: boolean } = {}): Promise<void> {
    for (let slot = 0; slot < this.size; slot++) {
      const thread = this.#threads[slot];
      if (!this.#closing && (thread === undefined || thread.exited)) this.#spawn(slot);
    }
    await Promise.all(this.threads.map((thread) => thread.started));
    if (options.prime !== true) return;
    // Loaded here only: the ONNX schema it encodes with is parsed when imported.
    const model = (await import('./prime-model.js')).primeModel();
    // One thread after the other: the process-wide setup is done once, by the first.
    for (const thread of this.threads) {
      await new Promise<void>((resolve) => {
        thread.primes.push(resolve);
        thread.worker.postMessage({ type: 'prime', model } satisfies WorkerCommand);
      });
    }
  }

  /**
   * The thread a new session should go to: the one holding the fewest sessions, preferring threads
   * not in `avoid` (the model's other instances, so its copies spread across threads). Starts the
   * thread of an empty slot when that is the least loaded.
   */
  place(avoid: ReadonlySet<HostThread> = new Set()): HostThread {
    if (this.#closing) throw new Error('the worker pool is closing');
    let best: { slot: number; load: number; avoided: boolean } | undefined;
    for (let slot = 0; slot < this.size; slot++) {
      const thread = this.#threads[slot];
      const live = thread !== undefined && !thread.exited ? thread : undefined;
      const candidate = { slot, load: live?.load ?? 0, avoided: live !== undefined && avoid.has(live) };
      if (
        best === undefined ||
        (best.avoided && !candidate.avoided) ||
        (best.avoided === candidate.avoided && candidate.load < best.load)
      ) {
        best = candidate;
      }
    }
    const thread = this.#threads[best!.slot];
    return thread !== undefined && !thread.exited ? thread : this.#spawn(best!.slot);
  }

  /** Creates and warms up a session on `thread`; rejects with onnxruntime's reason or the thread's death. */
  load(thread: HostThread, setup: WorkerSetup, owner: SessionOwner): Promise<{ ref: SessionRef; ready: SessionReady }> {
    if (thread.exited) return Promise.reject(new Error(`${owner.description} could not load: its thread has stopped`));
    const id = this.#nextSession++;
    return new Promise((resolve, reject) => {
      thread.loads.set(id, {
        resolve: (ready) => resolve({ ref: { thread, id }, ready }),
        reject,
        owner,
      });
      thread.worker.postMessage({ type: 'load', session: id, setup } satisfies WorkerCommand);
    });
  }

  /** Runs the session once; tensors that own their buffer move to the thread, others are copied once. */
  run(ref: SessionRef, inputs: NamedTensor[], outputs?: string[]): Promise<RunResult> {
    const { thread } = ref;
    const owner = thread.sessions.get(ref.id);
    if (thread.exited || owner === undefined) {
      return Promise.reject(internal(`session ${ref.id} is no longer loaded: its thread has stopped`));
    }
    const id = this.#nextRun++;
    const transfer: ArrayBuffer[] = [];
    const movable = inputs.map((tensor) => {
      if (!ArrayBuffer.isView(tensor.data)) return tensor;
      const data =
        ownsWholeBuffer(tensor.data) || isSurrendered(tensor.data.buffer) ? tensor.data : tensor.data.slice();
      if (!transfer.includes(data.buffer as ArrayBuffer)) transfer.push(data.buffer as ArrayBuffer);
      return { ...tensor, data };
    });
    const command: WorkerCommand = { type: 'run', id, session: ref.id, inputs: movable };
    if (outputs !== undefined) command.outputs = outputs;
    return new Promise<RunResult>((resolve, reject) => {
      thread.runs.set(id, { resolve, reject, submitted: performance.now(), owner });
      thread.worker.postMessage(command, transfer);
    });
  }

  /** Releases a session with nothing in flight; resolves once its memory is handed back (or its thread is gone). */
  release(ref: SessionRef): Promise<void> {
    const { thread } = ref;
    if (thread.exited || !thread.sessions.has(ref.id)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      thread.releases.set(ref.id, resolve);
      thread.worker.postMessage({ type: 'release', session: ref.id } satisfies WorkerCommand);
    });
  }

  /** Stops every thread; the pools using them released their sessions first. */
  close(): Promise<void> {
    this.#closing = true;
    this.#closed ??= this.#stopThreads();
    return this.#closed;
  }

  async #stopThreads(): Promise<void> {
    await Promise.all(
      this.threads.map(async (thread) => {
        const exited = new Promise<void>((resolve) => thread.worker.once('exit', () => resolve()));
        thread.worker.postMessage({ type: 'close' } satisfies WorkerCommand);
        const timer = setTimeout(() => void thread.worker.terminate(), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  #spawn(slot: number): HostThread {
    // A thread's JS garbage is small (messages, promises; tensors live outside the heap), but V8 on
    // Node 24 grows an isolate's young generation with the allocation rate and keeps it: a few
    // threads each growing it by tens of MiB moved the server's resident size by up to ~15 % between
    // readings of test/e2e/soak.test.ts. Capped, the soak run alone stayed within ±2 % (10 runs); in
    // a full suite it still moved 16 % once, so this is not all of that noise.
    const worker = new Worker(WORKER_URL, {
      name: `${this.#name} #${slot}`,
      workerData: this.#workerData,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    const thread = new HostThread(slot, worker);
    this.#threads[slot] = thread;
    let lastError: Error | undefined;
    worker.on('message', (event: WorkerEvent) => this.#onEvent(thread, event));
    worker.on('error', (error) => {
      lastError = error;
    });
    worker.on('exit', (code) => this.#onExit(thread, lastError?.message ?? `its thread exited with code ${code}`));
    return thread;
  }

  #onEvent(thread: HostThread, event: WorkerEvent): void {
    switch (event.type) {
      case 'started':
        if (event.priorityFailure !== undefined && !this.#priorityFailureTold) {
          this.#priorityFailureTold = true;
          this.#events.priorityUnchanged?.(event.priorityFailure);
        }
        thread.markStarted();
        break;
      case 'primed':
        thread.primes.shift()?.();
        break;
      case 'ready': {
        const pending = thread.loads.get(event.session);
        thread.loads.delete(event.session);
        if (pending === undefined) return;
        thread.sessions.set(event.session, pending.owner);
        pending.resolve(event);
        break;
      }
      case 'failed':
        thread.loads.get(event.session)?.reject(new Error(event.error));
        thread.loads.delete(event.session);
        break;
      case 'released':
        thread.sessions.delete(event.session);
        thread.releases.get(event.session)?.();
        thread.releases.delete(event.session);
        break;
      case 'result': {
        for (const buffer of event.recycled) bufferPool.recycle(buffer);
        const pending = thread.runs.get(event.id);
        thread.runs.delete(event.id);
        if (pending === undefined) return;
        const roundTrip = performance.now() - pending.submitted;
        pending.resolve({
          outputs: event.outputs,
          computeMs: event.computeMs,
          queueMs: Math.max(0, roundTrip - event.computeMs),
        });
        break;
      }
      case 'error':
        for (const buffer of event.recycled) bufferPool.recycle(buffer);
        thread.runs.get(event.id)?.reject(internal(`onnxruntime failed: ${event.error}`));
        thread.runs.delete(event.id);
        break;
    }
  }

  /**
   * A thread died (a crash, or terminate()): whatever it held fails with the cause, its slot empties
   * (the next placement starts a fresh thread there), and each session's owner hears that it is lost.
   */
  #onExit(thread: HostThread, cause: string): void {
    thread.exited = true;
    thread.markStarted();
    for (const primed of thread.primes.splice(0)) primed();
    if (this.#threads[thread.slot] === thread) this.#threads[thread.slot] = undefined;
    for (const pending of thread.loads.values()) {
      pending.reject(new Error(`${pending.owner.description} stopped while loading: ${cause}`));
    }
    for (const pending of thread.runs.values()) {
      pending.reject(internal(`${pending.owner.description} stopped during inference: ${cause}`));
    }
    for (const release of thread.releases.values()) release();
    const lost = [...thread.sessions.values()];
    thread.loads.clear();
    thread.runs.clear();
    thread.releases.clear();
    thread.sessions.clear();
    if (this.#closing) return;
    if (lost.length > 0 || cause !== 'its thread exited with code 0') {
      this.#events.threadExited?.({ slot: thread.slot, cause, sessions: lost.map((o) => o.description) });
    }
    for (const owner of lost) owner.lost(cause);
  }
}

function ownsWholeBuffer(view: ArrayBufferView): boolean {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer;
}

import type { Worker } from 'node:worker_threads';
import type { NamedTensor } from '../protocol/datatypes.js';
import { unavailable } from '../protocol/errors.js';
import { CrashLoopDetector, type CrashLoopPolicy, type SupervisorEvents } from './instance-supervisor.js';
import {
  SharedWorkers,
  type HostThread,
  type RunResult,
  type SessionOwner,
  type SessionReady,
  type SessionRef,
} from './shared-workers.js';
import type { WorkerSetup } from './worker-messages.js';

export { surrenderBuffer, type RunResult } from './shared-workers.js';

export type PoolReady = Omit<SessionReady, 'session'> & { instances: number };

interface Instance extends SessionOwner {
  index: number;
  /** Where its session is loaded; undefined while it loads or after its thread died. */
  ref?: SessionRef;
  /** Runs submitted and not settled. */
  pending: number;
  /** Called when the last pending run is settled (close waits for it). */
  onIdle?: () => void;
}

/**
 * The instances of one model version: a session each, placed across the threads of the server-wide
 * worker pool (the model's copies on different threads where there are enough). A request goes to
 * the instance with the fewest runs in flight, and among those to the one whose thread is least busy
 * with every model's runs. Without a shared pool it starts its own, one thread per instance (the
 * commands that run one model once).
 */
export class WorkerPool {
  readonly #setup: WorkerSetup;
  readonly #size: number;
  readonly #workers: SharedWorkers;
  readonly #ownsWorkers: boolean;
  #instances: Instance[] = [];
  #closing = false;
  readonly #events: SupervisorEvents;
  readonly #crashes: CrashLoopDetector;
  /** Replacements being loaded; requests arriving while no instance is up wait for one. */
  #replacing = 0;
  #waiting: (() => void)[] = [];
  /** Set once the pool has given up after a crash loop. */
  #failure?: string;

  constructor(
    setup: WorkerSetup,
    instances: number,
    events: SupervisorEvents = {},
    crashLoop?: CrashLoopPolicy,
    workers?: SharedWorkers,
  ) {
    this.#setup = setup;
    this.#size = instances;
    this.#events = events;
    this.#crashes = new CrashLoopDetector(crashLoop);
    this.#ownsWorkers = workers === undefined;
    this.#workers = workers ?? new SharedWorkers(instances, { name: setup.label });
  }

  /** Loads every instance and resolves once all are warmed up; rejects with the first failure. */
  async start(): Promise<PoolReady> {
    this.#instances = Array.from({ length: this.#size }, (_, index) => this.#instance(index));
    const settled = await Promise.allSettled(this.#instances.map((instance) => this.#load(instance)));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed !== undefined) {
      await this.close();
      throw failed.reason as Error;
    }
    const ready = (settled as PromiseFulfilledResult<SessionReady>[]).map((s) => s.value);
    const { provider, skippedProviders, signature, warmup } = ready[0];
    const loadMs = Math.max(...ready.map((r) => r.loadMs));
    return { type: 'ready', provider, skippedProviders, signature, loadMs, warmup, instances: this.#size };
  }

  /** Requests in flight across all instances. */
  get inFlight(): number {
    return this.#instances.reduce((sum, instance) => sum + instance.pending, 0);
  }

  /**
   * The threads that hold this version's loaded sessions, for diagnostics and fault-injection tests: a
   * thread that stops is handled like any crash (its runs fail, every session it held is reloaded).
   */
  get threads(): readonly Worker[] {
    return [
      ...new Set(this.#instances.flatMap((i) => (i.ref !== undefined && !i.ref.thread.exited ? [i.ref.thread] : []))),
    ].map((thread) => thread.worker);
  }

  /** The worker thread (its slot in the server-wide pool) each instance's session is on; null while it reloads. */
  get placement(): Array<number | null> {
    return this.#instances.map((i) => (i.ref === undefined || i.ref.thread.exited ? null : i.ref.thread.slot));
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
    instance.pending++;
    return this.#workers.run(instance.ref!, inputs, outputs).finally(() => {
      instance.pending--;
      if (instance.pending === 0) instance.onIdle?.();
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#wakeWaiting();
    const instances = this.#instances;
    this.#instances = [];
    await Promise.all(
      instances.map(async (instance) => {
        // Runs are asynchronous in onnxruntime-node: releasing the session under one would lose its answer.
        if (instance.pending > 0) await new Promise<void>((resolve) => (instance.onIdle = resolve));
        if (instance.ref !== undefined) await this.#workers.release(instance.ref);
        instance.ref = undefined;
      }),
    );
    if (this.#ownsWorkers) await this.#workers.close();
  }

  #instance(index: number): Instance {
    const instance: Instance = {
      index,
      pending: 0,
      description: `instance ${index} of ${this.#setup.label}`,
      lost: (cause) => {
        instance.ref = undefined;
        if (!this.#closing && this.#failure === undefined) this.#replace(instance, cause);
      },
    };
    return instance;
  }

  /** Loads the instance's session on the least loaded thread, away from the version's other copies. */
  async #load(instance: Instance): Promise<SessionReady> {
    const elsewhere = new Set<HostThread>(
      this.#instances.flatMap((i) => (i !== instance && i.ref !== undefined ? [i.ref.thread] : [])),
    );
    const { ref, ready } = await this.#workers.load(this.#workers.place(elsewhere), this.#setup, instance);
    if (this.#closing) {
      await this.#workers.release(ref);
      throw new Error(`${this.#setup.label} was closed while loading`);
    }
    instance.ref = ref;
    return ready;
  }

  #leastBusy(): Instance | undefined {
    let best: Instance | undefined;
    for (const instance of this.#instances) {
      if (instance.ref === undefined || instance.ref.thread.exited) continue;
      if (
        best === undefined ||
        instance.pending < best.pending ||
        (instance.pending === best.pending && instance.ref.thread.runs.size < best.ref!.thread.runs.size)
      ) {
        best = instance;
      }
    }
    return best;
  }

  /** Loads a lost instance again (on a live or fresh thread), or gives up on a crash loop. */
  #replace(instance: Instance, cause: string): void {
    this.#events.instanceCrashed?.({ instance: instance.index, cause });
    const loop = this.#crashes.record(cause);
    if (loop !== undefined) {
      this.#failure = loop;
      this.#events.gaveUp?.(loop);
      void this.close();
      return;
    }
    this.#replacing++;
    this.#load(instance)
      .then(
        (ready) =>
          this.#events.instanceReplaced?.({
            instance: instance.index,
            loadMs: ready.loadMs,
            warmupMs: ready.warmup.ms,
          }),
        (error: unknown) => {
          if (!this.#closing && this.#failure === undefined) {
            this.#replace(instance, `its replacement failed to start: ${(error as Error).message}`);
          }
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

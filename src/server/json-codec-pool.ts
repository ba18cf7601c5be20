/**
 * JSON off the main thread: large inference requests are parsed and decoded, and large JSON answers
 * printed, in a small pool of codec threads (json-codec-worker.ts). JSON costs the main thread about
 * 25–40 ms per MB each way, during which every other request of every model waits; handed to a
 * worker, the main thread only moves bytes: the body goes there by transfer, typed arrays and the
 * answer's bytes come back by transfer. Small bodies stay on the main thread: their decode holds it
 * well under a millisecond, and a round trip between threads adds ~0.1 ms to the request
 * (thresholds measured in bench/RESULTS.md, `npm run bench:json`).
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { RequestLimits } from '../core/request-limits.js';
import type { NamedTensor, TensorData } from '../protocol/datatypes.js';
import { internal, ServeError } from '../protocol/errors.js';
import type { InferenceRequestHeader, InferenceResponse } from '../protocol/json-codec.js';
import { checkNice, DEFAULT_WORKER_NICE } from '../runtime/thread-priority.js';
import { ownedBuffers, type CodecFailure, type CodecReply, type CodecTask } from './json-codec-messages.js';

/** Request bodies from this size on are decoded in a codec worker (below, ~0.6 ms of main-thread work at most). */
export const JSON_WORKER_MIN_BODY_BYTES = 128 * 1024;
/** JSON answers with this many output elements or more are printed in a codec worker. */
export const JSON_WORKER_MIN_OUTPUT_ELEMENTS = 16 * 1024;

// Built, the worker is the .js next to this file; run from the TypeScript sources, a small loader starts it.
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './json-codec-worker.dev.mjs' : './json-codec-worker.js',
  import.meta.url,
);

/** A request the codec worker parsed: its header, and its inputs (or the decode error) when asked. */
export interface OffloadedRequest {
  header: InferenceRequestHeader;
  decodeInputs: () => NamedTensor[];
}

interface Pending {
  resolve: (reply: CodecReply & { ok: true }) => void;
  reject: (error: Error) => void;
}

interface CodecThread {
  worker: Worker;
  pending: Map<number, Pending>;
}

function rebuilt(failure: CodecFailure): ServeError {
  return new ServeError(failure.code, failure.message);
}

export class JsonCodecPool {
  readonly #size: number;
  /** Steps below the main thread's priority for its threads (thread-priority.ts). */
  readonly #nice: number;
  #threads: CodecThread[] = [];
  #nextId = 1;
  #closed = false;

  /** `size` threads at most, started on first use (a server that never sees large JSON starts none). */
  constructor(size = Math.min(2, Math.max(1, os.availableParallelism() - 1)), nice = DEFAULT_WORKER_NICE) {
    checkNice(nice);
    this.#size = size;
    this.#nice = nice;
  }

  /**
   * Parses a JSON inference request in a worker. The body's memory moves there (the caller must not
   * use `body` afterwards). Header errors reject; errors in the tensor data are thrown by
   * `decodeInputs`, so that checks against the model, made before it is called, come first as they do
   * for a body decoded on the main thread.
   */
  async decodeRequest(body: Buffer, limits: RequestLimits): Promise<OffloadedRequest> {
    const owned =
      body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer
        ? new Uint8Array(body.buffer)
        : new Uint8Array(body); // a view into a larger (pooled) buffer: its bytes only
    const reply = await this.#run({ id: 0, kind: 'decode', body: owned, limits }, [owned.buffer as ArrayBuffer]);
    const { header, inputs, decodeError } = reply;
    return {
      header: header!,
      decodeInputs: () => {
        if (decodeError !== undefined) throw rebuilt(decodeError);
        return inputs!;
      },
    };
  }

  /** The UTF-8 JSON text of an answer, printed in a worker; the outputs' memory moves there. */
  async encodeResponse(response: InferenceResponse): Promise<Buffer> {
    // A view into a batch's output buffer is copied (its part only): the others' views stay intact.
    const outputs = response.outputs.map((output) =>
      ArrayBuffer.isView(output.data) && ownedBuffers([output.data]).length === 0
        ? { ...output, data: (output.data as Exclude<TensorData, string[]>).slice() }
        : output,
    );
    const reply = await this.#run(
      { id: 0, kind: 'encode', response: { ...response, outputs } },
      ownedBuffers(outputs.map((output) => output.data)),
    );
    const bytes = reply.bytes!;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const threads = this.#threads;
    this.#threads = [];
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  #run(task: CodecTask, transfer: ArrayBuffer[]): Promise<CodecReply & { ok: true }> {
    if (this.#closed) return Promise.reject(internal('the JSON codec pool is closed'));
    const thread = this.#pick();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage({ ...task, id }, transfer);
    });
  }

  /** The thread with the fewest tasks in flight, starting another while under the size. */
  #pick(): CodecThread {
    const idle = this.#threads.find((thread) => thread.pending.size === 0);
    if (idle !== undefined) return idle;
    if (this.#threads.length < this.#size) return this.#start();
    return this.#threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  #start(): CodecThread {
    const worker = new Worker(WORKER_URL, { name: 'json-codec', workerData: { nice: this.#nice } });
    // Idle codec threads never keep the process alive.
    worker.unref();
    const thread: CodecThread = { worker, pending: new Map() };
    worker.on('message', (reply: CodecReply) => {
      const pending = thread.pending.get(reply.id);
      if (pending === undefined) return;
      thread.pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply);
      else pending.reject(rebuilt(reply.error));
    });
    const fail = (error: Error) => {
      // A thread that dies (out of memory, a bug) fails its tasks; the next task starts a new one.
      this.#threads = this.#threads.filter((t) => t !== thread);
      for (const pending of thread.pending.values()) pending.reject(error);
      thread.pending.clear();
    };
    worker.on('error', (error) => fail(internal(`the JSON codec thread failed: ${error.message}`, error)));
    worker.on('exit', (code) => fail(internal(`the JSON codec thread exited with code ${code}`)));
    this.#threads.push(thread);
    return thread;
  }
}

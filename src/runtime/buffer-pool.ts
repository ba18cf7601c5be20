/**
 * ArrayBuffers for request bodies and batch tensors, used again instead of allocated per request.
 * Under a stream of small requests (text-orientation's 108 KB binary body at c=16) each request
 * allocated two fresh ArrayBuffers on the main thread: its body and its share of the batch's tensor.
 * V8 answers that external memory with scavenges and mark-compacts ("external memory pressure" in
 * `--trace-gc`), a quarter of the main thread's time in bench/RESULTS.md's profiles.
 *
 * A buffer comes back only once nothing can read it any more, by one of two doors:
 * - `recycle`: the worker thread transfers its inputs' buffers back with the result of the run
 *   (`src/runtime/inference-worker.ts`); they crossed by transfer both ways, so the copy that arrives
 *   is the only one left, whoever allocated it.
 * - `release`: the owner of a buffer this pool handed out (the HTTP infer route, for the body it read
 *   into one) gives it back once its request has settled and its tensors were copied into a batch,
 *   not handed over. A buffer the pool did not make is ignored there: a Buffer slab or a caller's
 *   memory may still be in use.
 * Detached buffers, buffers already in the pool and sizes outside the classes are ignored; the pool
 * keeps at most MAX_POOLED_BYTES, and a buffer taken from it is transferable (surrendered) as a whole.
 */

const surrendered = new WeakSet<ArrayBufferLike>();

/**
 * The caller will not touch `buffer` again (say, an HTTP body once its tensors are decoded): tensors
 * that are views into it move to the worker with the whole buffer, detached here, instead of being
 * copied out. Only for a plain ArrayBuffer that nothing else shares (not a Buffer pool slab).
 */
export function surrenderBuffer(buffer: ArrayBufferLike): void {
  if (buffer instanceof ArrayBuffer) surrendered.add(buffer);
}

/** Whether views into `buffer` may take the whole of it to a worker (surrenderBuffer). */
export function isSurrendered(buffer: ArrayBufferLike): boolean {
  return surrendered.has(buffer);
}

/** Size classes: powers of two from 16 KiB to 4 MiB. */
const MIN_CLASS = 16 * 1024;
/** Below this Buffer.allocUnsafe takes a slice of Node's own Buffer pool (half its 8 KiB on Node 20): cheap, not pooled here. */
const MIN_TAKEN = 4 * 1024;
const MAX_CLASS = 4 * 1024 * 1024;
/** What an idle server keeps for the next burst, all classes together. */
export const MAX_POOLED_BYTES = 32 * 1024 * 1024;

/** Whether `byteLength` is one of the pool's size classes (the worker returns only such buffers). */
export function isPoolSize(byteLength: number): boolean {
  return byteLength >= MIN_CLASS && byteLength <= MAX_CLASS && (byteLength & (byteLength - 1)) === 0;
}

export class BufferPool {
  readonly #free = new Map<number, ArrayBuffer[]>();
  /** Buffers this pool made or took back: the ones `release` accepts. */
  readonly #ours = new WeakSet<ArrayBuffer>();
  /** Buffers waiting in #free, so that one given back twice is kept once. */
  readonly #waiting = new WeakSet<ArrayBuffer>();
  #pooledBytes = 0;
  /** Buffers handed out again instead of allocated (for tests and benchmarks). */
  reused = 0;

  /**
   * A buffer of at least `byteLength` bytes (its contents are whatever the last user left: the caller
   * overwrites what it uses), or undefined below 4 KiB and above the largest class.
   */
  take(byteLength: number): ArrayBuffer | undefined {
    if (byteLength < MIN_TAKEN || byteLength > MAX_CLASS) return undefined;
    let size = MIN_CLASS;
    while (size < byteLength) size *= 2;
    let buffer = this.#free.get(size)?.pop();
    if (buffer === undefined) {
      buffer = new ArrayBuffer(size);
      this.#ours.add(buffer);
    } else {
      this.#waiting.delete(buffer);
      this.#pooledBytes -= size;
      this.reused++;
    }
    surrenderBuffer(buffer);
    return buffer;
  }

  /** A buffer that came back from a worker by transfer (nobody else holds it): kept when its size fits. */
  recycle(buffer: ArrayBufferLike): void {
    if (!(buffer instanceof ArrayBuffer)) return;
    this.#ours.add(buffer);
    this.#keep(buffer);
  }

  /** A buffer from `take` that its owner no longer reads; anything else is ignored. */
  release(buffer: ArrayBufferLike): void {
    if (buffer instanceof ArrayBuffer && this.#ours.has(buffer)) this.#keep(buffer);
  }

  #keep(buffer: ArrayBuffer): void {
    const size = buffer.byteLength; // 0 once detached (handed to a worker)
    if (!isPoolSize(size) || this.#waiting.has(buffer) || this.#pooledBytes + size > MAX_POOLED_BYTES) return;
    let free = this.#free.get(size);
    if (free === undefined) this.#free.set(size, (free = []));
    free.push(buffer);
    this.#waiting.add(buffer);
    this.#pooledBytes += size;
  }
}

/** The process's pool: bodies, batches and the buffers workers send back all meet here. */
export const bufferPool = new BufferPool();

/**
 * Frees buffers nobody will read again now, not at the owning thread's next garbage collection. An
 * inference thread allocates little JS, so V8 collects its heap seldom, and meanwhile the backing
 * stores of a run's dead inputs and unreduced outputs (an OCR page's detector input, ~8 MB; a
 * recognizer batch's class scores, ~6 MB) piled up outside it: with --single-threaded-gc on Node 24,
 * up to ~140 MB in one thread, and the server's resident size with them (bench/RESULTS.md).
 * `transfer(0)` detaches a buffer and frees its memory at once; Node 20 lacks it and leaves them to
 * the collector. Only for buffers that nothing else, native code included, still reads.
 */
export function freeNow(buffers: Iterable<ArrayBufferLike | undefined>): void {
  for (const buffer of buffers as Iterable<Es2024ArrayBuffer | undefined>) {
    // One sent to another thread is detached already (and transfer would throw).
    if (buffer instanceof ArrayBuffer && buffer.transfer !== undefined && !buffer.detached) buffer.transfer(0);
  }
}

/** What ES2024 adds to ArrayBuffer (Node 21+), beyond the ES2022 library this project compiles against. */
type Es2024ArrayBuffer = ArrayBuffer & { transfer?: (length: number) => ArrayBuffer; detached?: boolean };

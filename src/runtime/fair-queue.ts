/**
 * The line of runs waiting for one worker thread, fair across models: each take goes to the model
 * served least recently among those with work waiting, and within a model to its oldest run. A
 * thread runs one session at a time (onnxruntime-node's run is synchronous on it), so with arrival
 * order a flooded model whose instances share the thread would hold several places ahead of an idle
 * model's request; here it holds one.
 */
export class FairQueue<T> {
  /** Waiting items per key; a key leaves the map when its last item is taken. */
  readonly #waiting = new Map<string, T[]>();
  /** When each key was last served (a count of takes); keys never served count as 0. */
  readonly #servedAt = new Map<string, number>();
  #takes = 0;
  #size = 0;

  /** Items waiting, across all keys. */
  get size(): number {
    return this.#size;
  }

  push(key: string, item: T): void {
    const line = this.#waiting.get(key);
    if (line === undefined) this.#waiting.set(key, [item]);
    else line.push(item);
    this.#size++;
  }

  /**
   * The next item: the oldest of the key served least recently; ties (keys never served) go to the
   * key that has waited longest, i.e. arrival order. Undefined when nothing waits.
   */
  shift(): T | undefined {
    let chosen: string | undefined;
    let chosenAt = Infinity;
    // Map order is the order keys started waiting, so a strict `<` keeps the earliest among ties.
    for (const key of this.#waiting.keys()) {
      const servedAt = this.#servedAt.get(key) ?? 0;
      if (servedAt < chosenAt) {
        chosen = key;
        chosenAt = servedAt;
      }
    }
    if (chosen === undefined) return undefined;
    const line = this.#waiting.get(chosen)!;
    const item = line.shift()!;
    if (line.length === 0) this.#waiting.delete(chosen);
    this.#servedAt.set(chosen, ++this.#takes);
    this.#size--;
    return item;
  }

  /** Forgets a key that will not come back (its sessions were released); what it had waiting stays. */
  forget(key: string): void {
    if (!this.#waiting.has(key)) this.#servedAt.delete(key);
  }
}

/**
 * On-demand loading under a memory budget (KServe ModelMesh's idea): versions are listed UNLOADED and
 * loaded by their first request, which later requests for the same version wait behind; when a load
 * would take the models' memory over the budget, the least recently used idle versions are unloaded
 * first. What a version costs is measured, not guessed: the growth of the process's resident memory
 * across its load (sessions, weights, warmup arenas) and until the next load begins (its first use),
 * the largest seen over its loads. Loads run one at a time, so each measurement is mostly one
 * version's (growth from other models' traffic meanwhile is counted too; memory the main thread's
 * garbage collector frees meanwhile is not, so it can also fall short: bench/RESULTS.md).
 */
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { overloaded, unavailable } from '../protocol/errors.js';
import type { ModelLoader } from './model-loader.js';
import { notReady, type ModelVersion } from './model-version.js';

const MB = 1024 * 1024;

export class MemoryBudget {
  readonly bytes: number;
  readonly #loader: ModelLoader;
  readonly #log: Logger;
  /** The versions the budget governs (the registry's on-demand versions). */
  readonly #versions: () => ModelVersion[];
  /** Loads in progress or waiting their turn, by version: later requests wait on the same one. */
  readonly #loads = new Map<ModelVersion, Promise<void>>();
  #turn: Promise<unknown> = Promise.resolve();
  /** The last version loaded and the resident memory right after: what grew since is its first use. */
  #last?: { version: ModelVersion; rssAfter: number; bytes: number };

  constructor(bytes: number, loader: ModelLoader, log: Logger, versions: () => ModelVersion[]) {
    this.bytes = bytes;
    this.#loader = loader;
    this.#log = log;
    this.#versions = versions;
  }

  /** Resident memory the loaded on-demand versions hold, as measured at their loads. */
  get heldBytes(): number {
    return this.#loaded().reduce((sum, v) => sum + (v.onDemand!.memoryBytes ?? 0), 0);
  }

  /**
   * Resolves once `version` is READY, loading it (and evicting others) if it is not; rejects with
   * UNAVAILABLE when its load failed and OVERLOADED when the budget is held by busy versions.
   */
  async ensure(version: ModelVersion): Promise<void> {
    const demand = version.onDemand!;
    demand.lastUsed = performance.now();
    if (version.state === 'READY') return;
    if (version.state === 'UNAVAILABLE') throw notReady(version);
    let load = this.#loads.get(version);
    if (load === undefined) {
      load = this.#inTurn(() => this.#load(version));
      this.#loads.set(version, load);
      void load.catch(() => undefined).finally(() => this.#loads.delete(version));
    }
    await load;
    if (version.ready() === undefined) throw notReady(version);
  }

  #inTurn(operation: () => Promise<void>): Promise<void> {
    const result = this.#turn.catch(() => undefined).then(operation);
    this.#turn = result;
    return result;
  }

  async #load(version: ModelVersion): Promise<void> {
    if (version.state !== 'UNLOADED') return;
    const demand = version.onDemand!;
    const fileBytes = await stat(version.spec.modelPath).then(
      (info) => info.size,
      () => 0,
    );
    if (fileBytes > this.bytes) {
      throw unavailable(
        `model ${version.label} cannot load under --model-memory-budget ${mb(this.bytes)} MB: its file alone is ${mb(fileBytes)} MB`,
      );
    }
    // Before a version's first load, its file is the best lower bound there is. A version measured
    // above the whole budget still loads, alone: the budget then holds nothing else.
    const estimate = Math.min(Math.max(demand.memoryBytes ?? 0, fileBytes), this.bytes);
    this.#attributeFirstUse();
    await this.#makeRoom(version, estimate);
    const started = performance.now();
    const before = process.memoryUsage.rss();
    await this.#loader.load(version);
    const after = process.memoryUsage.rss();
    demand.loads++;
    demand.lastLoadMs = performance.now() - started;
    const bytes = Math.max(after - before, fileBytes);
    demand.memoryBytes = Math.max(demand.memoryBytes ?? 0, bytes);
    this.#last = { version, rssAfter: after, bytes };
    this.#log.info(
      {
        model: version.name,
        version: version.version,
        state: version.state,
        loadMs: Math.round(demand.lastLoadMs),
        memoryBytes: demand.memoryBytes,
        heldBytes: this.heldBytes,
        budgetBytes: this.bytes,
      },
      `model ${version.label} loaded on demand in ${Math.round(demand.lastLoadMs)} ms: ${mb(demand.memoryBytes)} MB; ` +
        `on-demand models hold ${mb(this.heldBytes)} of ${mb(this.bytes)} MB`,
    );
  }

  /**
   * Memory a version takes keeps growing after its load: its first requests' arenas, its queue and
   * statistics on the main thread. Measured over the load alone, 100 small models summed to less than
   * the 157 MB they held (bench/RESULTS.md). What grew between the end of the last load and the start
   * of this one is added to the version loaded last: an over-estimate when others were busy too, which
   * errs on the side of the budget.
   */
  #attributeFirstUse(): void {
    const last = this.#last;
    this.#last = undefined;
    if (last === undefined || last.version.pool === undefined) return;
    const demand = last.version.onDemand!;
    const grown = process.memoryUsage.rss() - last.rssAfter;
    if (grown > 0) demand.memoryBytes = Math.max(demand.memoryBytes ?? 0, last.bytes + grown);
  }

  /** Unloads the least recently used idle versions until `needed` more bytes fit in the budget. */
  async #makeRoom(version: ModelVersion, needed: number): Promise<void> {
    while (this.heldBytes + needed > this.bytes) {
      const victim = this.#loaded()
        .filter((v) => v !== version && isIdle(v))
        .sort((a, b) => a.onDemand!.lastUsed - b.onDemand!.lastUsed)[0];
      if (victim === undefined) {
        throw overloaded(
          `model ${version.label} cannot be loaded now: it needs about ${mb(needed)} MB and the models serving ` +
            `requests hold ${mb(this.heldBytes)} of the ${mb(this.bytes)} MB --model-memory-budget; retry later`,
        );
      }
      victim.onDemand!.evictions++;
      this.#log.info(
        { model: victim.name, version: victim.version, memoryBytes: victim.onDemand!.memoryBytes, for: version.label },
        `model ${victim.label} unloaded (least recently used) to make room for ${version.label}`,
      );
      await victim.unload();
    }
  }

  #loaded(): ModelVersion[] {
    return this.#versions().filter((v) => v.onDemand !== undefined && v.pool !== undefined);
  }
}

/** Nothing queued and nothing running: unloading it now costs no request anything. */
function isIdle(version: ModelVersion): boolean {
  return (version.queue?.waiting ?? 0) === 0 && (version.pool?.inFlight ?? 0) === 0;
}

function mb(bytes: number): string {
  return (bytes / MB).toFixed(bytes < 10 * MB ? 1 : 0);
}

/** `2GB`, `512MiB`, `1.5G`, `800000000`: bytes; binary units (1 GB = 1024³ bytes), as memory limits are read. */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (match === null) throw new RangeError(`expected a size such as 2GB, 512MB or a number of bytes, got "${text}"`);
  const power = ['', 'k', 'm', 'g', 't'].indexOf(match[2].toLowerCase());
  const bytes = Math.round(Number(match[1]) * 1024 ** power);
  if (!(bytes > 0)) throw new RangeError(`expected a size above 0, got "${text}"`);
  return bytes;
}

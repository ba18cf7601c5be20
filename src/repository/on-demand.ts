/**
 * On-demand loading under a memory budget (KServe ModelMesh's idea): versions are listed UNLOADED and
 * loaded by their first request, which later requests for the same version wait behind; when a load
 * would take the models' memory over the budget, the least recently used idle versions are unloaded
 * first.
 *
 * What the models hold is judged two ways, and a load must fit both: the sum of their measured sizes
 * within the budget, and the process's resident memory above its base (the RSS once startup's loads
 * and the worker threads' priming were done) within the budget less a headroom. A size is
 * measured, not guessed: the peak of resident memory during a version's load (session creation and
 * warmup arenas, above what stays), or what it still holds until the next load begins (its first
 * requests), as its last load found it. The resident check catches what sizes miss: memory an
 * evicted model freed that the allocator kept, the main thread's own growth. A version never loaded
 * is estimated from its file at the 90th percentile of the size-to-file ratios measured so far (2
 * before any). After each load the check runs again, so that what the load cost beyond its estimate
 * is made room for at once, not at the next load.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { overloaded, unavailable } from '../protocol/errors.js';
import type { ModelLoader } from './model-loader.js';
import { notReady, type ModelVersion } from './model-version.js';

const MB = 1024 * 1024;
/** A version never loaded is estimated at this many times its file until a load measures the ratio. */
const FIRST_ESTIMATE_RATIO = 2;
/** The most headroom the resident count keeps (headroomBytes): what grows between loads does not scale with the budget. */
const HEADROOM_MAX = 32 * MB;

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
  /** Resident memory with no on-demand version loaded: set by settle() once startup's loads are done. */
  #baseRss?: number;
  readonly #peak = new PeakResident();
  #unaccountedReported = false;

  constructor(bytes: number, loader: ModelLoader, log: Logger, versions: () => ModelVersion[]) {
    this.bytes = bytes;
    this.#loader = loader;
    this.#log = log;
    this.#versions = versions;
    if (process.env.MALLOC_MMAP_THRESHOLD_ === undefined && process.platform === 'linux') {
      log.warn(
        { budgetBytes: bytes },
        '--model-memory-budget without MALLOC_MMAP_THRESHOLD_ set: glibc may keep the memory of evicted models, ' +
          'and the budget then evicts more to stay within it; start with MALLOC_MMAP_THRESHOLD_=131072 ' +
          '(npm start and the container image set it)',
      );
    }
  }

  /** The server's resident memory before any on-demand load: what the budget comes on top of. */
  settle(): void {
    this.#baseRss = process.memoryUsage.rss();
  }

  get baseRss(): number {
    this.#baseRss ??= process.memoryUsage.rss();
    return this.#baseRss;
  }

  /** Resident memory the loaded on-demand versions hold, as measured at their loads. */
  get heldBytes(): number {
    return this.#loaded().reduce((sum, v) => sum + (v.onDemand!.memoryBytes ?? 0), 0);
  }

  /** The process's resident memory above its base. */
  get residentAboveBase(): number {
    return process.memoryUsage.rss() - this.baseRss;
  }

  /**
   * Part of the budget the resident count leaves free for what grows between two loads and is no
   * model's: request buffers, garbage the main thread has not collected yet, a first run's arena.
   * Measured without it, 100 small models under 64 MB peaked 4 MB over (bench/RESULTS.md).
   */
  get headroomBytes(): number {
    return Math.min(Math.floor(this.bytes / 8), HEADROOM_MAX);
  }

  /** Whether `needed` more bytes fit: by the measured sizes within the budget, and by the resident count within it less the headroom. */
  #fits(needed: number): boolean {
    return this.heldBytes + needed <= this.bytes && this.residentAboveBase + needed <= this.bytes - this.headroomBytes;
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
    // A version measured above the whole budget still loads, alone: the budget then holds nothing else.
    const estimate = Math.min(demand.memoryBytes ?? Math.ceil(fileBytes * this.#ratio()), this.bytes);
    this.#attributeFirstUse();
    await this.#makeRoom(version, estimate);
    const started = performance.now();
    const before = process.memoryUsage.rss();
    this.#peak.reset();
    await this.#loader.load(version);
    const after = process.memoryUsage.rss();
    const peak = Math.max(this.#peak.read(), after);
    demand.loads++;
    demand.lastLoadMs = performance.now() - started;
    // The peak during the load, not what stays: the next load of this version needs that much room.
    // This load's figure replaces the last one's: a process's first load also pays onnxruntime's
    // one-off setup, which a later load of the same version does not.
    const bytes = Math.max(peak - before, after - before, fileBytes);
    demand.memoryBytes = bytes;
    demand.fileBytes = fileBytes;
    this.#last = { version, rssAfter: after, bytes };
    if (version.ready() !== undefined) await this.#makeRoom(version, 0, false);
    this.#log.info(
      {
        model: version.name,
        version: version.version,
        state: version.state,
        loadMs: Math.round(demand.lastLoadMs),
        memoryBytes: demand.memoryBytes,
        heldBytes: this.heldBytes,
        residentAboveBaseBytes: after - this.baseRss,
        budgetBytes: this.bytes,
      },
      `model ${version.label} loaded on demand in ${Math.round(demand.lastLoadMs)} ms: ${mb(demand.memoryBytes)} MB; ` +
        `on-demand models hold ${mb(this.heldBytes)} of ${mb(this.bytes)} MB (resident ${mb(after - this.baseRss)} MB above base)`,
    );
  }

  /**
   * Memory a version takes keeps growing after its load: its first requests' arenas, its queue and
   * statistics on the main thread. What grew between the end of the last load and the start of this
   * one is added to the version loaded last: an over-estimate when others were busy too, which errs
   * on the side of the budget.
   */
  #attributeFirstUse(): void {
    const last = this.#last;
    this.#last = undefined;
    if (last === undefined || last.version.pool === undefined) return;
    const demand = last.version.onDemand!;
    const grown = process.memoryUsage.rss() - last.rssAfter;
    if (grown > 0) demand.memoryBytes = Math.max(demand.memoryBytes ?? 0, last.bytes + grown);
  }

  /**
   * Unloads the least recently used idle versions until `needed` more bytes fit in the budget, by
   * both counts (#fits). When nothing idle is left: refused (when `mayRefuse`: before a load) if
   * the busy versions' measured sizes leave no room; otherwise it loads, and what the resident count
   * still finds is memory that is no model's (logged once).
   */
  async #makeRoom(version: ModelVersion, needed: number, mayRefuse = true): Promise<void> {
    while (!this.#fits(needed)) {
      const victim = this.#loaded()
        .filter((v) => v !== version && isIdle(v))
        .sort((a, b) => a.onDemand!.lastUsed - b.onDemand!.lastUsed)[0];
      if (victim === undefined) {
        if (!mayRefuse || this.heldBytes + needed <= this.bytes) {
          // Once: after that, every load in the same state would say the same.
          if (this.#unaccountedReported) return;
          this.#unaccountedReported = true;
          this.#log.warn(
            {
              model: version.name,
              version: version.version,
              residentAboveBaseBytes: this.residentAboveBase,
              budgetBytes: this.bytes,
            },
            `model ${version.label} loads with the process ${mb(this.residentAboveBase)} MB above its base and nothing idle ` +
              `left to unload: memory the loaded models' sizes do not account for (the allocator's, the main thread's)`,
          );
          return;
        }
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

  /**
   * Measured size ÷ file size, the 90th percentile over the versions measured (FIRST_ESTIMATE_RATIO
   * before any): estimates a version before its first load. Above the median, as a load costing more
   * than its estimate passes the budget; not the largest, as one outlier should not set every estimate.
   */
  #ratio(): number {
    const ratios = this.#versions()
      .flatMap((v) => {
        const demand = v.onDemand;
        return demand?.memoryBytes !== undefined && (demand.fileBytes ?? 0) > 0
          ? [demand.memoryBytes / demand.fileBytes!]
          : [];
      })
      .sort((a, b) => a - b);
    return ratios.length === 0 ? FIRST_ESTIMATE_RATIO : ratios[Math.floor((ratios.length - 1) * 0.9)];
  }

  #loaded(): ModelVersion[] {
    return this.#versions().filter((v) => v.onDemand !== undefined && v.pool !== undefined);
  }
}

/**
 * The process's peak resident memory since reset(): the kernel's high-water mark (VmHWM), which
 * writing 5 to /proc/self/clear_refs resets; where that cannot be done, sampled every millisecond.
 */
class PeakResident {
  #sampled = 0;
  #timer?: NodeJS.Timeout;
  #kernel = process.platform === 'linux';

  reset(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#kernel) {
      try {
        writeFileSync('/proc/self/clear_refs', '5');
        // A kernel that takes the write but keeps the old mark would report an old peak: sample instead.
        if (this.read() <= process.memoryUsage.rss() + MB) return;
      } catch {
        // Not allowed here (some sandboxes): sampled below.
      }
      this.#kernel = false;
    }
    this.#sampled = process.memoryUsage.rss();
    this.#timer = setInterval(() => (this.#sampled = Math.max(this.#sampled, process.memoryUsage.rss())), 1);
    this.#timer.unref();
  }

  read(): number {
    if (this.#kernel) {
      const kib = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
      if (kib !== undefined) return Number(kib) * 1024;
    }
    clearInterval(this.#timer);
    this.#timer = undefined;
    return this.#sampled;
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

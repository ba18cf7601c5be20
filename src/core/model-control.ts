import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { invalidArgument, notFound } from '../protocol/errors.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import type { ModelVersion } from '../repository/model-version.js';
import {
  MODEL_NAME,
  modelFolderNames,
  scanRepository,
  type ModelVersionSpec,
  type ScanOptions,
} from '../repository/scan.js';
import { repositoryIndex, type IndexEntry } from './repository-index.js';
import { loadFailure, type LoadOptions } from './load-parameters.js';
import { createHash } from 'node:crypto';

/** Triton's control modes: `none` loads at startup only; `poll` follows the repository; `explicit` follows the API. */
export const CONTROL_MODES = ['none', 'poll', 'explicit'] as const;
export type ControlMode = (typeof CONTROL_MODES)[number];

/**
 * Loads, reloads and unloads the models of a repository while the server runs. A new or changed
 * version is loaded and warmed up beside the one serving and only then swapped in; the old one is
 * closed after the swap, which lets the requests it already holds finish (a worker runs its messages
 * in order, and `close` comes last). A version that fails to load leaves the one serving in place,
 * and the failure is kept for the index and logged. Operations run one at a time.
 */
export class ModelControl {
  readonly #registry: ModelRegistry;
  readonly #repository: string;
  readonly #log: Logger;
  /** What each served version was loaded from, to tell a changed file from an unchanged one. */
  readonly #loadedFrom = new WeakMap<ModelVersion, string>();
  /** Model folder fingerprints at the last load, for polling. */
  #folders = new Map<string, string>();
  /** Versions taken out of service by an unload call, by model: the index keeps listing them, as Triton's does. */
  readonly #unloaded = new Map<string, number[]>();
  /** Reloads that failed while an older version kept serving, by model then version. */
  readonly #failedReloads = new Map<string, Map<number, string>>();
  #queue: Promise<unknown> = Promise.resolve();
  #poller?: NodeJS.Timeout;

  readonly #scanOptions: ScanOptions;

  constructor(registry: ModelRegistry, repository: string, log: Logger, scanOptions: ScanOptions = {}) {
    this.#scanOptions = scanOptions;
    this.#registry = registry;
    this.#repository = path.resolve(repository);
    this.#log = log;
  }

  /** Records what the startup load served, so that the first poll only acts on changes. */
  async adoptStartup(): Promise<void> {
    for (const version of this.#registry.versions()) {
      this.#loadedFrom.set(version, await versionFingerprint(version.spec));
    }
    this.#folders = await this.#folderFingerprints();
  }

  /**
   * The index: the registry's rows, then (unless readyOnly) the unloaded models as UNAVAILABLE, reason
   * "unloaded", and by name only every folder of the repository that was never loaded, read afresh
   * (as Triton lists them, so that a folder copied in after startup shows before its load call).
   */
  async index(readyOnly = false): Promise<IndexEntry[]> {
    const rows = this.#rows(readyOnly);
    if (readyOnly) return rows;
    const listed = new Set(rows.map((row) => row.name));
    const folders = await modelFolderNames(this.#repository).catch((error: unknown) => {
      this.#log.warn({ err: error }, `repository index: cannot list ${this.#repository}; listing loaded models only`);
      return [];
    });
    const neverLoaded = folders.filter((name) => !listed.has(name)).map((name): IndexEntry => ({ name }));
    return [...rows, ...neverLoaded].sort((a, b) => a.name.localeCompare(b.name));
  }

  #rows(readyOnly: boolean): IndexEntry[] {
    const served = repositoryIndex(this.#registry, {
      readyOnly,
      reloadFailure: (name, version) => this.reloadFailure(name, version),
    });
    if (readyOnly) return served;
    const unloaded = [...this.#unloaded].flatMap(([name, versions]) =>
      versions.map((version): IndexEntry => ({
        name,
        version: String(version),
        state: 'UNAVAILABLE',
        reason: 'unloaded',
      })),
    );
    return [...served, ...unloaded].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Why the last reload of a version failed while the previous model kept serving, if it did. */
  reloadFailure(name: string, version: number): string | undefined {
    return this.#failedReloads.get(name)?.get(version);
  }

  /**
   * Loads or reloads a model from the repository, with `options.config` instead of its config.yaml
   * when given; resolves to its index rows, rejects if nothing of it serves.
   */
  load(name: string, options: LoadOptions = {}): Promise<IndexEntry[]> {
    return this.#serialised(async () => {
      checkModelName(name);
      await this.#load(name, options);
      const entries = this.#rows(false).filter((e) => e.name === name);
      if (!entries.some((e) => e.state === 'READY' || e.state === 'UNLOADED')) {
        throw invalidArgument(
          loadFailure(
            name,
            `no version is available: ${entries.map((e) => `${e.version === undefined ? '' : `version ${e.version}: `}${e.reason}`).join('; ')}`,
          ),
        );
      }
      return entries;
    });
  }

  /** Takes a model out of service; requests it already holds finish first. */
  unload(name: string): Promise<void> {
    return this.#serialised(async () => {
      checkModelName(name);
      if (!this.#registry.modelNames().includes(name)) {
        throw notFound(`model ${name} is not loaded; loaded: ${this.#registry.modelNames().join(', ') || '(none)'}`);
      }
      const versions = this.#registry.versionsOf(name).map((v) => v.version);
      await this.#unload(name);
      this.#unloaded.set(name, versions);
    });
  }

  /** Poll mode: loads new and changed model folders, unloads removed ones. */
  poll(): Promise<void> {
    return this.#serialised(async () => {
      const now = await this.#folderFingerprints();
      for (const [name, fingerprint] of now) {
        if (this.#folders.get(name) !== fingerprint) await this.#load(name);
      }
      for (const name of this.#folders.keys()) {
        if (!now.has(name) && this.#registry.modelNames().includes(name)) await this.#unload(name);
      }
      this.#folders = now;
    });
  }

  /** Poll mode: a scan every `intervalMs`; a failed scan is logged and the next one tries again. */
  startPolling(intervalMs: number): void {
    this.#poller = setInterval(() => {
      this.poll().catch((error: unknown) =>
        this.#log.error({ err: error }, `repository poll failed: ${(error as Error).message}`),
      );
    }, intervalMs);
  }

  /** Stops polling and waits for the operation in progress, if any. */
  async stop(): Promise<void> {
    clearInterval(this.#poller);
    await this.#queue.catch(() => undefined);
  }

  #serialised<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#queue.catch(() => undefined).then(operation);
    this.#queue = result;
    return result;
  }

  async #load(name: string, options: LoadOptions = {}): Promise<void> {
    const override = options.config === undefined ? {} : { configOverride: { model: name, config: options.config } };
    const scan = await scanRepository(this.#repository, { ...this.#scanOptions, ...override });
    const scanError = scan.errors.find((e) => e.name === name);
    const specs = scan.specs.filter((s) => s.name === name);
    const current = this.#registry.modelNames().includes(name) ? this.#registry.versionsOf(name) : [];
    if (scanError !== undefined) {
      if (current.some(serves)) {
        this.#recordFailure(name, current, scanError.error);
        return;
      }
      this.#registry.add({ specs: [], errors: [scanError] });
      this.#unloaded.delete(name);
      return;
    }
    if (specs.length === 0) {
      throw notFound(
        loadFailure(
          name,
          `failed to poll from model repository: model ${name} is not in repository ${this.#repository}`,
        ),
      );
    }
    const failures = new Map<number, string>();
    const next: ModelVersion[] = [];
    for (const spec of specs) {
      const fingerprint = await versionFingerprint(spec, options);
      const existing = current.find((v) => v.version === spec.version);
      if (existing !== undefined && serves(existing) && this.#loadedFrom.get(existing) === fingerprint) {
        next.push(existing);
        continue;
      }
      const candidate = await this.#registry.prepare(spec);
      if (serves(candidate) || !serves(existing)) {
        this.#loadedFrom.set(candidate, fingerprint);
        next.push(candidate);
      } else {
        // The file changed but the new one is broken: the old one keeps serving.
        failures.set(spec.version, candidate.reason ?? 'unknown reason');
        next.push(existing!);
      }
    }
    // Nothing new loaded (say, a broken newer version under version_policy latest: 1): keep serving the old.
    if (!next.some(serves)) {
      next.push(...current.filter((v) => serves(v) && !next.includes(v)));
    }
    const retired = this.#registry.install(name, next);
    this.#unloaded.delete(name);
    this.#failedReloads.set(name, failures);
    for (const [version, reason] of failures) {
      this.#log.error(
        { model: name, version, reason },
        `model ${name} version ${version}: reload failed, still serving the previous model: ${reason}`,
      );
    }
    this.#log.info(
      { model: name, versions: next.map((v) => `${v.version}:${v.state}`), retired: retired.map((v) => v.version) },
      `model ${name} now serves version(s) ${
        next
          .filter((v) => v.state === 'READY')
          .map((v) => v.version)
          .join(', ') || '(none)'
      }`,
    );
    await Promise.all(retired.map((v) => v.retire()));
  }

  async #unload(name: string): Promise<void> {
    const retired = this.#registry.remove(name);
    this.#failedReloads.delete(name);
    this.#log.info({ model: name }, `model ${name} unloaded; requests it holds finish first`);
    await Promise.all(retired.map((v) => v.retire()));
  }

  #recordFailure(name: string, current: ModelVersion[], reason: string): void {
    this.#failedReloads.set(name, new Map(current.map((v) => [v.version, reason])));
    this.#log.error(
      { model: name, reason },
      `model ${name}: reload failed, still serving the previous model: ${reason}`,
    );
  }

  /** Size and modification time of every file in each model folder (and of `source` files outside it). */
  async #folderFingerprints(): Promise<Map<string, string>> {
    const fingerprints = new Map<string, string>();
    const entries = await readdir(this.#repository, { withFileTypes: true });
    for (const entry of entries) {
      // Symbolic links are followed, as the scan follows them.
      if (!(entry.isDirectory() || entry.isSymbolicLink()) || entry.name.startsWith('.')) continue;
      fingerprints.set(entry.name, (await filesFingerprint(path.join(this.#repository, entry.name), 3)).join('|'));
    }
    return fingerprints;
  }
}

/** READY, or UNLOADED under a memory budget (it loads on its next request): either way it serves. */
function serves(version: ModelVersion | undefined): boolean {
  return version?.state === 'READY' || version?.state === 'UNLOADED';
}

/** Names reach file paths: only names a repository folder may have (no `..`, no separators, no `__proto__`). */
function checkModelName(name: string): void {
  if (!MODEL_NAME.test(name) || name.includes('..')) {
    throw invalidArgument(`model name "${name}" is not valid; expected ${MODEL_NAME.source} without ".."`);
  }
}

async function fileFingerprint(file: string): Promise<string> {
  try {
    const info = await stat(file);
    return `${file}:${info.size}:${info.mtimeMs}`;
  } catch {
    return `${file}:missing`;
  }
}

/**
 * What a version was loaded from: its file, and its config.yaml or the config a load brought. A load
 * with its own config therefore always loads anew, and so does the next load without one.
 */
async function versionFingerprint(spec: ModelVersionSpec, options: LoadOptions = {}): Promise<string> {
  const config =
    options.config === undefined
      ? await Promise.all(['config.yaml', 'config.yml'].map((f) => fileFingerprint(path.join(spec.configDir, f))))
      : [`load config ${createHash('sha256').update(JSON.stringify(options.config)).digest('hex')}`];
  return [await fileFingerprint(spec.modelPath), ...config].join('|');
}

async function filesFingerprint(dir: string, depth: number): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    const kind = entry.isSymbolicLink() ? await stat(full).catch(() => undefined) : entry;
    if (kind?.isDirectory() && depth > 1) out.push(...(await filesFingerprint(full, depth - 1)));
    else if (kind?.isFile()) out.push(await fileFingerprint(full));
  }
  return out.sort();
}

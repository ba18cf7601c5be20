/**
 * The repository index: every model version with its state, and every model that could not be read.
 * One list for HTTP `POST /v2/repository/index` and gRPC `RepositoryIndex`.
 */
import type { ModelRegistry } from '../repository/model-registry.js';
import type { ModelState } from '../repository/model-version.js';

/** One row of the index (Triton's shape). */
export interface IndexEntry {
  name: string;
  /** Absent for a model whose folder could not be read at all. */
  version?: string;
  /** Absent for a folder in the repository that was never loaded (Triton's name-only row). */
  state?: ModelState;
  reason?: string;
}

/** The index's reason for a version that loads on demand and is not loaded now. */
export const UNLOADED_REASON = 'not loaded: loads on its next request (--model-memory-budget)';

export interface IndexOptions {
  /** Only READY versions. */
  readyOnly?: boolean;
  /** Why the last reload of a version failed while the previous model kept serving (model control). */
  reloadFailure?: (name: string, version: number) => string | undefined;
}

export function repositoryIndex(registry: ModelRegistry, options: IndexOptions = {}): IndexEntry[] {
  const entries: IndexEntry[] = [];
  for (const name of registry.modelNames()) {
    const error = registry.modelError(name);
    if (error !== undefined) {
      entries.push({ name, state: 'UNAVAILABLE', reason: error });
      continue;
    }
    for (const version of registry.versionsOf(name)) {
      const failed = options.reloadFailure?.(name, version.version);
      const reason =
        failed !== undefined
          ? `reload failed, still serving the previous model: ${failed}`
          : version.state === 'UNLOADED'
            ? UNLOADED_REASON
            : version.reason;
      entries.push({
        name,
        version: String(version.version),
        state: version.state,
        ...(reason === undefined ? {} : { reason }),
      });
    }
  }
  return options.readyOnly === true ? entries.filter((e) => e.state === 'READY') : entries;
}

/**
 * Triton's statistics extension: which versions a statistics request covers, for HTTP
 * `GET /v2/models[/{m}[/versions/{v}]]/stats` and gRPC `ModelStatistics` alike. Without a model,
 * every version the server knows; without a version, every version of the model, as in Triton.
 */
import type { Observability } from '../observability/observability.js';
import type { ModelStatistics } from '../observability/statistics.js';
import type { ModelRegistry } from '../repository/model-registry.js';

export function modelStatistics(
  registry: ModelRegistry,
  observability: Observability,
  model?: string,
  version?: string,
): ModelStatistics[] {
  if (model === undefined) return observability.statistics();
  if (version === undefined) return observability.statistics(registry.versionsOf(model));
  return observability.statistics([registry.resolve(model, version)]);
}

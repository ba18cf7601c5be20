import type { FastifyInstance } from 'fastify';
import type { Observability } from '../../observability/observability.js';
import type { ModelRegistry } from '../../repository/model-registry.js';

interface StatsParams {
  model: string;
  version?: string;
}

/**
 * Triton's statistics extension (`{model_stats: [...]}`), each entry with its rolling window and
 * state added. Without a version, a model's statistics cover all its versions, as in Triton.
 */
export function registerStatsRoutes(app: FastifyInstance, registry: ModelRegistry, observability: Observability): void {
  app.get('/v2/models/stats', async () => ({ model_stats: observability.statistics() }));
  app.get<{ Params: StatsParams }>('/v2/models/:model/stats', async (request) => ({
    model_stats: observability.statistics(registry.versionsOf(request.params.model)),
  }));
  app.get<{ Params: StatsParams }>('/v2/models/:model/versions/:version/stats', async (request) => ({
    model_stats: observability.statistics([registry.resolve(request.params.model, request.params.version)]),
  }));
}

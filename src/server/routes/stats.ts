import type { FastifyInstance } from 'fastify';
import { modelStatistics } from '../../core/model-statistics.js';
import type { Observability } from '../../observability/observability.js';
import type { ModelRegistry } from '../../repository/model-registry.js';

interface StatsParams {
  model?: string;
  version?: string;
}

/**
 * Triton's statistics extension (`{model_stats: [...]}`), each entry with its rolling window and
 * state added. Without a version, a model's statistics cover all its versions, as in Triton.
 */
export function registerStatsRoutes(app: FastifyInstance, registry: ModelRegistry, observability: Observability): void {
  const stats = async (request: { params: StatsParams }) => ({
    model_stats: modelStatistics(registry, observability, request.params.model, request.params.version),
  });
  app.get<{ Params: StatsParams }>('/v2/models/stats', stats);
  app.get<{ Params: StatsParams }>('/v2/models/:model/stats', stats);
  app.get<{ Params: StatsParams }>('/v2/models/:model/versions/:version/stats', stats);
}

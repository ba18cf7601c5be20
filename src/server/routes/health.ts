import type { FastifyInstance } from 'fastify';
import { isServerReady, type ReadinessPolicy } from '../../core/readiness.js';
import type { ModelRegistry } from '../../repository/model-registry.js';

export function registerHealthRoutes(app: FastifyInstance, registry: ModelRegistry, policy: ReadinessPolicy): void {
  // Live is answered by the main thread alone, which never runs inference, so it stays fast under load.
  app.get('/v2/health/live', async () => ({ live: true }));

  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = isServerReady(registry, policy);
    reply.code(ready ? 200 : 503);
    return { ready };
  });
}

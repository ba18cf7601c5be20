import type { FastifyInstance } from 'fastify';
import type { ModelRegistry } from '../../repository/model-registry.js';

export interface ReadinessPolicy {
  /** Triton's strict readiness: ready only when every model is ready. Otherwise: once startup loading is done. */
  strict: boolean;
  /** Set at shutdown so that load balancers stop sending traffic before the server stops. */
  draining: () => boolean;
}

export function registerHealthRoutes(app: FastifyInstance, registry: ModelRegistry, policy: ReadinessPolicy): void {
  // Live is answered by the main thread alone, which never runs inference, so it stays fast under load.
  app.get('/v2/health/live', async () => ({ live: true }));

  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = isServerReady(registry, policy);
    reply.code(ready ? 200 : 503);
    return { ready };
  });
}

/** Server readiness under the policy: the same answer for HTTP /v2/health/ready and gRPC ServerReady. */
export function isServerReady(registry: ModelRegistry, policy: ReadinessPolicy): boolean {
  return !policy.draining() && (policy.strict ? registry.allReady : registry.startupDone);
}

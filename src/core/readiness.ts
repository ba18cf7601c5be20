/**
 * Readiness of the server and of one model version: the same answers for HTTP `/v2/health/ready`,
 * `/v2/models/{m}/ready` and gRPC `ServerReady`, `ModelReady`.
 */
import type { ModelRegistry } from '../repository/model-registry.js';
import type { ModelState } from '../repository/model-version.js';

export interface ReadinessPolicy {
  /** Triton's strict readiness: ready only when every model is ready. Otherwise: once startup loading is done. */
  strict: boolean;
  /** Set at shutdown so that load balancers stop sending traffic before the server stops. */
  draining: () => boolean;
}

/** Server readiness under the policy. */
export function isServerReady(registry: ModelRegistry, policy: ReadinessPolicy): boolean {
  return !policy.draining() && (policy.strict ? registry.allReady : registry.startupDone);
}

export interface ModelReadiness {
  name: string;
  version: string;
  ready: boolean;
  state: ModelState;
  /** Why the version is not ready (UNAVAILABLE), when it is not. */
  reason?: string;
}

/** One model version's readiness (the newest version unless one is named); throws NOT_FOUND for an unknown one. */
export function modelReadiness(registry: ModelRegistry, model: string, version?: string): ModelReadiness {
  const found = registry.resolve(model, version);
  return {
    name: found.name,
    version: String(found.version),
    ready: found.state === 'READY',
    state: found.state,
    ...(found.reason === undefined ? {} : { reason: found.reason }),
  };
}

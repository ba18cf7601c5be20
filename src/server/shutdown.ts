import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { unavailable } from '../protocol/errors.js';

export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

// Health answers stay truthful while draining: live is still true, ready turns false.
const HEALTH_ROUTES = new Set(['/v2/health/live', '/v2/health/ready']);

/**
 * While draining, every new request except the health checks is answered 503 with the reason, and
 * every response closes its connection, so keep-alive clients move to another instance instead of
 * holding the server open.
 */
export function registerDrainHooks(app: FastifyInstance, draining: () => boolean): void {
  app.addHook('onRequest', async (request, reply) => {
    if (!draining()) return;
    void reply.header('connection', 'close');
    if (!HEALTH_ROUTES.has(request.url.split('?')[0])) {
      throw unavailable('onnx-serve is shutting down and accepts no new requests; retry on another instance');
    }
  });
  app.addHook('onSend', async (_request, reply) => {
    if (draining()) void reply.header('connection', 'close');
  });
}

/**
 * Stops listening and waits for the requests already accepted to be answered; after `timeoutMs`
 * the connections still open are cut so that shutdown is bounded.
 */
export async function drainHttp(app: FastifyInstance, timeoutMs: number, log: Logger): Promise<void> {
  const timer = setTimeout(() => {
    log.warn(
      { drainTimeoutMs: timeoutMs },
      `requests still open after the drain timeout of ${timeoutMs} ms; closing their connections`,
    );
    app.server.closeAllConnections();
  }, timeoutMs);
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}

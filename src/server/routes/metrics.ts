import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from '../../observability/metrics.js';

/** Prometheus exposition format, on the HTTP port (Triton uses a separate port, 8002). */
export function registerMetricsRoute(app: FastifyInstance, metrics: ServerMetrics): void {
  app.get('/metrics', async (_request, reply) => {
    const { text, contentType } = await metrics.scrape();
    return reply.type(contentType).send(text);
  });
}

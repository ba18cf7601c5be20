import type { Server } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from './metrics.js';

/**
 * The HTTP server's connections in /metrics: how many are open, the cap, how many the cap refused,
 * and the connections Node cut before fastify saw a request (timeouts, oversized or malformed heads).
 */
export class ConnectionMetrics {
  readonly #clientErrors: Counter<'reason'>;
  readonly #evicted: Counter<'kind'>;

  constructor(registry: Registry, server: Server, maxConnections: number) {
    const registers = [registry];
    new Gauge({
      name: `${METRIC_PREFIX}http_connections`,
      help: 'HTTP connections open now',
      registers,
      async collect() {
        this.set(await new Promise<number>((resolve) => server.getConnections((_error, count) => resolve(count))));
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}http_max_connections`,
      help: 'The cap on open HTTP connections (--max-connections); one more is closed as soon as it is accepted',
      registers,
    }).set(maxConnections);
    const refused = new Counter({
      name: `${METRIC_PREFIX}http_connections_refused_total`,
      help: 'Connections closed on arrival because the server already held --max-connections',
      registers,
    });
    server.on('drop', () => refused.inc());
    this.#evicted = new Counter({
      name: `${METRIC_PREFIX}http_connections_evicted_total`,
      help: 'Connections closed at the cap to make room: silent (no byte sent for a second) or idle (keep-alive between requests)',
      labelNames: ['kind'],
      registers,
    });
    this.#clientErrors = new Counter({
      name: `${METRIC_PREFIX}http_client_errors_total`,
      help: 'Connections cut before a request reached a route, by reason: headers_timeout, body_timeout (408), headers_too_large (431), malformed (400), reset (the client went away)',
      labelNames: ['reason'],
      registers,
    });
  }

  evicted(kind: string): void {
    this.#evicted.inc({ kind });
  }

  clientError(reason: string): void {
    this.#clientErrors.inc({ reason });
  }
}

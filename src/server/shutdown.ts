import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { unavailable } from '../protocol/errors.js';

export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
export const DEFAULT_SHUTDOWN_DELAY_MS = 0;

// Health answers stay truthful while draining: live is still true, ready turns false.
const HEALTH_ROUTES = new Set(['/v2/health/live', '/v2/health/ready']);

/**
 * The requests a server has accepted and not yet answered (or lost to their client), so that a
 * shutdown can wait for them with the listener still open and the health checks still answering.
 */
export class OpenRequests {
  #count = 0;
  #waiting: Array<() => void> = [];
  // One listener for every response (a response closes once): no closure per request on the hot path.
  readonly #closed = () => {
    if (--this.#count > 0) return;
    for (const resolve of this.#waiting.splice(0)) resolve();
  };

  get count(): number {
    return this.#count;
  }

  /** Counts the request until its response closes: answered, or its connection gone. */
  track(response: ServerResponse): void {
    this.#count++;
    // `on`, not `once` (whose wrapper is another closure): a response emits 'close' once.
    response.on('close', this.#closed);
  }

  /** Resolves once no accepted request is open. */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}

/** What the drain hooks need to know about a shutdown in progress. */
export interface DrainPolicy {
  /** The server is shutting down: answers close their connections. */
  draining: () => boolean;
  /** Past the grace point: new requests other than the health checks get 503. */
  refusing: () => boolean;
  /** Where accepted requests are counted, for the standalone server's shutdown to wait on. */
  open?: OpenRequests;
}

/** The request's path, without its query. */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * While draining, every response closes its connection, so keep-alive clients move to another
 * instance; past the grace point every new request except the health checks is answered 503 with
 * the reason. Health checks are never counted as open requests: they answer until the process exits.
 * Both hooks are synchronous (a `done` callback, no promise): they run on every request.
 */
export function registerDrainHooks(app: FastifyInstance, policy: DrainPolicy): void {
  app.addHook('onRequest', (request, reply, done) => {
    if (policy.draining()) void reply.header('connection', 'close');
    if (HEALTH_ROUTES.has(pathOf(request.url))) {
      done();
      return;
    }
    if (policy.refusing()) {
      done(unavailable('onnx-serve is shutting down and accepts no new requests; retry on another instance'));
      return;
    }
    policy.open?.track(reply.raw);
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (policy.draining()) void reply.header('connection', 'close');
    done(null, payload);
  });
}

/**
 * Waits, with the listener still open, for the requests already accepted to be answered; after
 * `timeoutMs` the connections still open are cut so that shutdown is bounded.
 */
export async function drainHttp(
  app: FastifyInstance,
  open: OpenRequests,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), timeoutMs);
  });
  try {
    if (await Promise.race([open.idle().then(() => false), timedOut])) {
      log.warn(
        { drainTimeoutMs: timeoutMs, open: open.count },
        `${open.count} request(s) still open after the drain timeout of ${timeoutMs} ms; closing their connections`,
      );
      app.server.closeAllConnections();
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Stops listening and closes what connections are left (idle keep-alive ones, late health checks). */
export async function closeHttp(app: FastifyInstance): Promise<void> {
  const closed = app.close();
  app.server.closeAllConnections();
  await closed;
}

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../observability/metrics.js';
import { overloaded } from '../protocol/errors.js';

/** Four bodies of the default 64 MiB --max-body-size at once. */
export const DEFAULT_MAX_INFLIGHT_BYTES = 256 * 1024 * 1024;

/** The bytes a request's body holds reserved, kept on its response until its body is read or it closes. */
const reserved = Symbol('bytes reserved for the request body');
type Reserving = ServerResponse & { [reserved]?: number };

/**
 * A bound on the bytes of request bodies being received at once, so that many slow uploads cannot
 * hold the memory of many bodies: a request reserves its Content-Length (a chunked or compressed one, the body
 * limit) when its headers arrive and frees it once its body is read or its connection closes. One
 * that would pass the bound is answered 503 with Retry-After before a byte of its body is read.
 * The hooks are synchronous and share one 'close' listener: they run on every request.
 */
export function registerInflightBytesBound(
  app: FastifyInstance,
  options: { maxBytes: number; bodyLimit: number; registry?: Registry },
): void {
  let inflight = 0;
  const release = (response: Reserving) => {
    const size = response[reserved];
    if (size === undefined) return;
    response[reserved] = undefined;
    inflight -= size;
  };
  function releaseOnClose(this: Reserving) {
    release(this);
  }
  app.addHook('onRequest', (request, reply, done) => {
    const size = reservation(request, options.bodyLimit);
    if (size === 0) {
      done();
      return;
    }
    // Alone, any body within --max-body-size is taken, whatever the bound.
    if (inflight > 0 && inflight + size > options.maxBytes) {
      done(
        overloaded(
          `request bodies being received hold ${inflight} bytes; this one's ${size} would pass the bound of ` +
            `${options.maxBytes} bytes (--max-inflight-bytes); retry later`,
        ),
      );
      return;
    }
    inflight += size;
    const response: Reserving = reply.raw;
    response[reserved] = size;
    // `on`, not `once` (whose wrapper is a closure per request): a response emits 'close' once.
    response.on('close', releaseOnClose);
    done();
  });
  app.addHook('preHandler', (_request, reply, done) => {
    release(reply.raw);
    done();
  });
  if (options.registry !== undefined) {
    new Gauge({
      name: `${METRIC_PREFIX}http_inflight_body_bytes`,
      help: 'Bytes reserved by request bodies being received now (bounded by --max-inflight-bytes)',
      registers: [options.registry],
      collect() {
        this.set(inflight);
      },
    });
  }
}

/**
 * What a request reserves: its declared length, the body limit when chunked or compressed (a gzip
 * body of a few KB may decode to the whole limit); nothing for a body fastify refuses unread.
 */
function reservation(request: FastifyRequest, bodyLimit: number): number {
  const encoding = request.headers['content-encoding']?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') return bodyLimit;
  const declared = request.headers['content-length'];
  if (declared !== undefined) {
    const length = Number(declared);
    return Number.isSafeInteger(length) && length > 0 && length <= bodyLimit ? length : 0;
  }
  return request.headers['transfer-encoding'] !== undefined ? bodyLimit : 0;
}

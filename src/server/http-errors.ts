/**
 * HTTP errors raised before a route runs, answered in the same `{"error": message}` shape and with
 * the catalogue's status (src/protocol/errors.ts) as every other error: Node's own refusals
 * (headers over the limit, malformed HTTP) and fastify's router's (a bad or too long URL).
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { RequestLimits } from '../core/request-limits.js';
import { JSON_CONTENT_TYPE } from './json-content-type.js';
import {
  headersTooLarge,
  invalidArgument,
  requestTimedOut,
  toServeError,
  uriTooLong,
  type ServeError,
} from '../protocol/errors.js';

/** Longest model name or version the router takes (fastify's maxParamLength). */
export const MAX_PARAM_LENGTH = 256;

/** The body of every error answer. */
export function errorBody(error: ServeError): { error: string } {
  return { error: error.message };
}

/** Why Node cut a connection before fastify saw its request. */
export type ClientErrorKind = 'headers_too_large' | 'headers_timeout' | 'body_timeout' | 'malformed' | 'reset';

/**
 * Node rejects some requests before fastify sees them (headers over maxHeaderSize, malformed HTTP,
 * headers or body not received within their timeouts): the answer goes to the socket directly, still
 * with the catalogue's status and body. `observe` hears of each one (metrics, timeout marks).
 */
export function clientErrorHandler(
  limits: RequestLimits,
  observe: (kind: ClientErrorKind, socket: Socket) => void = () => {},
) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      observe('reset', socket);
      socket.destroy();
      return;
    }
    // Node says only "request timeout"; a response object on the socket means the headers were in.
    const response = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    const kind: ClientErrorKind =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 'headers_too_large'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? response === undefined
            ? 'headers_timeout'
            : 'body_timeout'
          : 'malformed';
    observe(kind, socket);
    // A response already under way (the request was answered before its body came in) cannot take another.
    if (response?.headersSent === true) {
      socket.destroy();
      return;
    }
    const served =
      kind === 'headers_too_large'
        ? headersTooLarge(
            `the request line and headers are larger than the limit of ${limits.maxHeaderSize} bytes (--max-header-size)`,
          )
        : kind === 'headers_timeout'
          ? requestTimedOut(
              'the request line and headers did not arrive within the headers timeout (--headers-timeout-secs)',
            )
          : kind === 'body_timeout'
            ? requestTimedOut('the request body did not arrive within the request timeout (--request-timeout-secs)')
            : invalidArgument(`malformed HTTP request (${error.code ?? error.message})`);
    const body = JSON.stringify(errorBody(served));
    socket.end(
      `HTTP/1.1 ${served.status} ${STATUS_CODES[served.status]}\r\nContent-Type: ${JSON_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };
}

/** fastify's `frameworkErrors`: a URL the router cannot match, before any route or error handler. */
export function routerErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?')[0];
  const shown = path.length > 80 ? `${path.slice(0, 80)}…` : path;
  const served =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? uriTooLong(
          `URL ${shown} has a path segment (a model name or version) longer than ${MAX_PARAM_LENGTH} characters`,
        )
      : error.code === 'FST_ERR_BAD_URL'
        ? invalidArgument(`URL ${shown} is malformed: every % must start an escape of two hex digits, such as %2F`)
        : toServeError(error);
  // Outside every scope's hooks: a serializer of our own keeps fastify from adding `; charset=utf-8`.
  void reply.code(served.status).type(JSON_CONTENT_TYPE).serializer(JSON.stringify).send(errorBody(served));
}

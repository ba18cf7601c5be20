import type { FastifyError, FastifyRequest } from 'fastify';
import { aborted, requestTimedOut, ServeError, toServeError } from '../protocol/errors.js';
import { wasCutByTimeout } from './connections.js';

/**
 * Any error a request fails with, as the catalogue's error: ours pass through; fastify's own (body
 * limits, content length) and the request stream's (the client went away, or was cut for being too
 * slow) get their own codes and plain words, so that what a client caused is never counted or logged
 * as an internal error. The error handler and the failure metrics both use it.
 */
export function servedError(error: unknown, request: FastifyRequest, bodyLimit: number): ServeError {
  if (error instanceof ServeError) return error;
  const framework = error as FastifyError;
  switch (framework.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ServeError(
        'PAYLOAD_TOO_LARGE',
        `request body is larger than the limit of ${bodyLimit} bytes (${(bodyLimit / 1048576).toFixed(1)} MiB); raise it with --max-body-size`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ServeError('UNSUPPORTED_MEDIA_TYPE', `unsupported Content-Type: ${framework.message}`);
    // Node's IncomingMessage 'error' when the connection closes before the body is complete.
    case 'ECONNRESET':
      return wasCutByTimeout(request.raw.socket)
        ? requestTimedOut('the request body did not arrive within the request timeout (--request-timeout-secs)')
        : aborted('the client closed the connection before its request body was complete');
  }
  const status = framework.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new ServeError(status === 413 ? 'PAYLOAD_TOO_LARGE' : 'INVALID_ARGUMENT', framework.message);
  }
  return toServeError(error);
}

/**
 * The one error catalogue of onnx-serve. Every error a client can see is built here, with a
 * stable code, the HTTP status it maps to, and a message that names what was wrong and what was
 * expected. docs/errors.md lists the same codes; test/unit/errors.test.ts keeps the two in step.
 */

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'UNAVAILABLE'
  | 'OVERLOADED'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'REQUEST_TIMEOUT'
  | 'ABORTED'
  | 'PAYLOAD_TOO_LARGE'
  | 'URI_TOO_LONG'
  | 'HEADERS_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNAUTHENTICATED'
  | 'INTERNAL';

/** HTTP status per code; Triton maps NOT_FOUND→404, UNAVAILABLE→503, INTERNAL→500, the rest→400. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  UNAVAILABLE: 503,
  OVERLOADED: 503,
  TIMEOUT: 504,
  // nginx's "client closed request": nobody reads it, but logs and metrics do.
  CANCELLED: 499,
  // The client was too slow sending its request; the connection is closed after this answer.
  REQUEST_TIMEOUT: 408,
  // The client closed the connection before its request was complete: only logs and metrics see it.
  ABORTED: 499,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  HEADERS_TOO_LARGE: 431,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNAUTHENTICATED: 401,
  INTERNAL: 500,
};

export class ServeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds a client should wait before retrying (sent as Retry-After), for overload answers. */
  readonly retryAfterSeconds?: number;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ServeError';
    this.code = code;
    this.status = HTTP_STATUS[code];
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export const invalidArgument = (message: string): ServeError => new ServeError('INVALID_ARGUMENT', message);
export const notFound = (message: string): ServeError => new ServeError('NOT_FOUND', message);
export const unavailable = (message: string): ServeError => new ServeError('UNAVAILABLE', message);
export const overloaded = (message: string, retryAfterSeconds = 1): ServeError =>
  new ServeError('OVERLOADED', message, { retryAfterSeconds });
export const timedOut = (message: string): ServeError => new ServeError('TIMEOUT', message);
export const cancelled = (message: string): ServeError => new ServeError('CANCELLED', message);
export const requestTimedOut = (message: string): ServeError => new ServeError('REQUEST_TIMEOUT', message);
export const aborted = (message: string): ServeError => new ServeError('ABORTED', message);
export const payloadTooLarge = (message: string): ServeError => new ServeError('PAYLOAD_TOO_LARGE', message);
export const uriTooLong = (message: string): ServeError => new ServeError('URI_TOO_LONG', message);
export const headersTooLarge = (message: string): ServeError => new ServeError('HEADERS_TOO_LARGE', message);
export const unsupportedMediaType = (message: string): ServeError => new ServeError('UNSUPPORTED_MEDIA_TYPE', message);
export const internal = (message: string, cause?: unknown): ServeError =>
  new ServeError('INTERNAL', message, { cause });

/** Any thrown value as a ServeError: ours pass through, anything else is an internal error. */
export function toServeError(error: unknown): ServeError {
  if (error instanceof ServeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return internal(message, error);
}

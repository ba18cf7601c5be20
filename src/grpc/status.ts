/**
 * The gRPC status of each error of the catalogue (src/protocol/errors.ts), next to its HTTP status.
 * Follows Triton's gRPC server: not found, unavailable and internal keep their names, a full queue is
 * UNAVAILABLE (a client retries it with backoff), everything about the request is INVALID_ARGUMENT.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { toServeError, type ErrorCode } from '../protocol/errors.js';

export const GRPC_STATUS: Readonly<Record<ErrorCode, status>> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  UNAVAILABLE: status.UNAVAILABLE,
  OVERLOADED: status.UNAVAILABLE,
  TIMEOUT: status.DEADLINE_EXCEEDED,
  CANCELLED: status.CANCELLED,
  // HTTP only (slow or vanished uploads); grpc-js has its own deadlines and cancellation.
  REQUEST_TIMEOUT: status.DEADLINE_EXCEEDED,
  ABORTED: status.CANCELLED,
  // grpc-js answers a message over the size limit with RESOURCE_EXHAUSTED itself.
  PAYLOAD_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  // HTTP's alone (the URL and headers of an HTTP request); listed so that every code has a status.
  URI_TOO_LONG: status.INVALID_ARGUMENT,
  HEADERS_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  UNSUPPORTED_MEDIA_TYPE: status.INVALID_ARGUMENT,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  INTERNAL: status.INTERNAL,
};

/** Any thrown value as the error a gRPC handler's callback takes; retry-after rides in the trailers. */
export function toGrpcError(error: unknown): Partial<ServiceError> & { code: status; internal: boolean } {
  const served = toServeError(error);
  const metadata = new Metadata();
  if (served.retryAfterSeconds !== undefined) metadata.set('retry-after', String(served.retryAfterSeconds));
  return {
    code: GRPC_STATUS[served.code],
    details: served.message,
    metadata,
    internal: served.code === 'INTERNAL',
  };
}

import { ServeError, type ErrorCode } from '../protocol/errors.js';

/**
 * Whether a thrown value is an onnx-serve error, optionally of one code: tells invalid input
 * (INVALID_ARGUMENT) from an overloaded model (OVERLOADED), a timeout (TIMEOUT), a model not ready
 * (UNAVAILABLE) or an unknown one (NOT_FOUND).
 */
export function isServeError(error: unknown, code?: ErrorCode): error is ServeError {
  return error instanceof ServeError && (code === undefined || error.code === code);
}

import diagnosticsChannel from 'node:diagnostics_channel';
import type { ErrorCode } from '../protocol/errors.js';

/**
 * Why an inference failed, in the words of Triton's `reason` label, plus `invalid` for a bad request and
 * the failures a client causes by how it sends: `too_large` (a size limit), `client_timeout` (too slow
 * sending the request) and `aborted` (it closed the connection before the request was complete).
 */
export type FailureReason =
  'rejected' | 'timeout' | 'cancelled' | 'invalid' | 'too_large' | 'client_timeout' | 'aborted' | 'internal';

/** The model version an event is about; the object identity tells servers in one process apart. */
export interface ObservedModel {
  readonly name: string;
  readonly version: number;
}

export interface InferenceStarted {
  model: ObservedModel;
}

/** One finished inference request, successful or not. Times in milliseconds. */
export interface InferenceFinished {
  model: ObservedModel;
  requestId?: string;
  ok: boolean;
  reason?: FailureReason;
  /** The error message of a failed request. */
  error?: string;
  /** From the moment the request reached the server until its answer was ready. */
  totalMs: number;
  /** Absent for a request that failed before it reached the model's workers. */
  queueMs?: number;
  computeMs?: number;
  /** Items the request carried (its first dimension). */
  items: number;
  /** Items in the execution that served this request (larger than `items` when the batcher merged requests). */
  batchSize: number;
  /** Whether `runInference` had already counted the request as pending (so a subscriber can balance its gauge). */
  started: boolean;
}

export interface InferenceSubscriber {
  started(event: InferenceStarted): void;
  finished(event: InferenceFinished): void;
}

// diagnostics_channel, as undici does: the inference path publishes without knowing who listens, and
// metrics, rolling statistics and logs subscribe in one place. Publishing with no subscriber is a no-op.
const startedChannel = diagnosticsChannel.channel('onnx-serve:inference:started');
const finishedChannel = diagnosticsChannel.channel('onnx-serve:inference:finished');

export function publishInferenceStarted(event: InferenceStarted): void {
  if (startedChannel.hasSubscribers) startedChannel.publish(event);
}

export function publishInferenceFinished(event: InferenceFinished): void {
  if (finishedChannel.hasSubscribers) finishedChannel.publish(event);
}

/** Subscribes to every inference in this process; returns the function that unsubscribes. */
export function subscribeInference(subscriber: InferenceSubscriber): () => void {
  const onStarted = (message: unknown) => subscriber.started(message as InferenceStarted);
  const onFinished = (message: unknown) => subscriber.finished(message as InferenceFinished);
  startedChannel.subscribe(onStarted);
  finishedChannel.subscribe(onFinished);
  return () => {
    startedChannel.unsubscribe(onStarted);
    finishedChannel.unsubscribe(onFinished);
  };
}

/** The failure reason a ServeError code counts as. */
export function failureReason(code: ErrorCode): FailureReason {
  switch (code) {
    case 'OVERLOADED':
    case 'UNAVAILABLE':
    case 'UNAUTHENTICATED':
      return 'rejected';
    case 'TIMEOUT':
      return 'timeout';
    case 'CANCELLED':
      return 'cancelled';
    case 'REQUEST_TIMEOUT':
      return 'client_timeout';
    case 'ABORTED':
      return 'aborted';
    case 'PAYLOAD_TOO_LARGE':
    case 'URI_TOO_LONG':
    case 'HEADERS_TOO_LARGE':
      return 'too_large';
    case 'INTERNAL':
      return 'internal';
    case 'INVALID_ARGUMENT':
    case 'NOT_FOUND':
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 'invalid';
  }
}

// An error already published as a failed inference, so the HTTP error handler does not count it twice.
const published = new WeakSet<object>();

export function markPublished(error: unknown): void {
  if (typeof error === 'object' && error !== null) published.add(error);
}

export function wasPublished(error: unknown): boolean {
  return typeof error === 'object' && error !== null && published.has(error);
}

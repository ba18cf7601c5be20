import type { ModelConfig } from '../config/model-config.js';

/** How one model version's queue forms batches: config.yaml with every default filled in. */
export interface BatchingPolicy {
  /** Largest batch in items (dimension 0); 0 = no batching, every request runs alone. */
  maxBatchSize: number;
  /** How long the oldest queued request may wait for a fuller batch while an instance is free. */
  maxQueueDelayMs: number;
  /** Sizes sent as soon as they can be formed, ascending. */
  preferredBatchSizes: number[];
  /** Requests that may wait for an instance; one more is refused with 503. */
  maxQueueSize: number;
  /** Deadline of a queued request when it asks for none, in µs; 0 = none. */
  defaultTimeoutMicroseconds: number;
  /** Whether a request's `timeout` parameter may shorten that default (never lengthen it). */
  allowTimeoutOverride: boolean;
}

/**
 * Batching is on by default (as Triton turns it on when max_batch_size > 1) with no delay: a batch
 * forms from what queued while the instances were busy, so a lone request never waits and a busy
 * server runs full batches.
 */
export const DEFAULT_MAX_BATCH_SIZE = 8;
export const DEFAULT_MAX_QUEUE_SIZE = 512;

export function resolveBatchingPolicy(config: ModelConfig): BatchingPolicy {
  const batching = config.dynamic_batching ?? {};
  const delayMs =
    batching.max_queue_delay_ms ??
    (batching.max_queue_delay_microseconds === undefined ? 0 : batching.max_queue_delay_microseconds / 1000);
  return {
    maxBatchSize: config.max_batch_size ?? DEFAULT_MAX_BATCH_SIZE,
    maxQueueDelayMs: delayMs,
    preferredBatchSizes: [...(batching.preferred_batch_size ?? [])].sort((a, b) => a - b),
    maxQueueSize: batching.max_queue_size ?? DEFAULT_MAX_QUEUE_SIZE,
    defaultTimeoutMicroseconds: batching.default_timeout_microseconds ?? 0,
    allowTimeoutOverride: batching.allow_timeout_override ?? true,
  };
}

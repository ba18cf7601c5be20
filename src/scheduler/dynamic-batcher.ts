/**
 * Which queued requests run next, with Triton's dynamic batching rules: requests with the same batch
 * key join the oldest request, up to max_batch_size items; a full (or preferred-size) batch goes at
 * once; otherwise the batch waits until the oldest request has waited max_queue_delay, then goes with
 * what it has. Pure: the queue calls it whenever an instance is free.
 */
import type { BatchingPolicy } from './batching-policy.js';

export interface Queued {
  /** From batchKey(); undefined for a request that runs alone. */
  key: string | undefined;
  /** Items along dimension 0 the request carries. */
  items: number;
  /** performance.now() when it was queued. */
  enqueuedAt: number;
}

export type BatchDecision = { run: number[] } | { waitUntil: number };

/** The next batch from a non-empty queue (indices in queue order), or the time to look again. */
export function nextBatch(queue: readonly Queued[], policy: BatchingPolicy, now: number): BatchDecision {
  const head = queue[0];
  const max = policy.maxBatchSize;
  if (max === 0 || head.key === undefined || head.items >= max) return { run: [0] };

  const members: number[] = [];
  let total = 0;
  for (let index = 0; index < queue.length && total < max; index++) {
    const request = queue[index];
    // A request that would overflow the batch waits for the next one; smaller ones behind it may fit.
    if (request.key === head.key && total + request.items <= max) {
      members.push(index);
      total += request.items;
    }
  }
  const preferred = policy.preferredBatchSizes;
  const goesNow =
    total >= max ||
    policy.maxQueueDelayMs === 0 ||
    preferred.includes(total) ||
    (preferred.length > 0 && total >= preferred[preferred.length - 1]);
  const deadline = head.enqueuedAt + policy.maxQueueDelayMs;
  if (goesNow || now >= deadline) return { run: members };
  return { waitUntil: deadline };
}

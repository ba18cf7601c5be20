import type { Logger } from 'pino';
import type { InferenceFinished } from './inference-events.js';

export interface InferenceLogOptions {
  /** Most lines of one kind (slow, failed) written per interval; the rest are counted and summarised. */
  linesPerInterval?: number;
  intervalMs?: number;
}

export const DEFAULT_LINES_PER_INTERVAL = 10;
export const DEFAULT_LOG_INTERVAL_MS = 10_000;

/**
 * One log line per slow inference and per failed one, so a person can find the request by its id;
 * rate-limited per kind so a burst cannot flood the log: past the limit, lines are counted and one
 * summary says how many were suppressed when the interval ends (or the server closes).
 */
export class InferenceLog {
  readonly #slow: RateLimiter;
  readonly #failed: RateLimiter;

  constructor(log: Logger, options: InferenceLogOptions = {}) {
    const limit = options.linesPerInterval ?? DEFAULT_LINES_PER_INTERVAL;
    const interval = options.intervalMs ?? DEFAULT_LOG_INTERVAL_MS;
    this.#slow = new RateLimiter(log, 'slow inference', limit, interval);
    this.#failed = new RateLimiter(log, 'failed inference', limit, interval);
  }

  finished(event: InferenceFinished, thresholdMs: number): void {
    const { model } = event;
    const where = { model: model.name, version: model.version, requestId: event.requestId };
    if (!event.ok) {
      this.#failed.write((log) => {
        const fields = { ...where, reason: event.reason, error: event.error, durationMs: round(event.totalMs) };
        const message = `inference failed (${event.reason}) on ${model.name}:${model.version}: ${event.error}`;
        if (event.reason === 'internal') log.error(fields, message);
        else log.warn(fields, message);
      });
      return;
    }
    if (event.totalMs <= thresholdMs) return;
    this.#slow.write((log) =>
      log.warn(
        {
          ...where,
          durationMs: round(event.totalMs),
          queueMs: event.queueMs === undefined ? undefined : round(event.queueMs),
          computeMs: event.computeMs === undefined ? undefined : round(event.computeMs),
          batchSize: event.batchSize,
          thresholdMs,
        },
        `slow inference on ${model.name}:${model.version}: ${round(event.totalMs)} ms, over the ${thresholdMs} ms alert threshold`,
      ),
    );
  }

  /** Writes the pending summaries and stops the timers. */
  close(): void {
    this.#slow.flush();
    this.#failed.flush();
  }
}

class RateLimiter {
  readonly #log: Logger;
  readonly #kind: string;
  readonly #limit: number;
  readonly #intervalMs: number;
  #written = 0;
  #suppressed = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, kind: string, limit: number, intervalMs: number) {
    this.#log = log;
    this.#kind = kind;
    this.#limit = limit;
    this.#intervalMs = intervalMs;
  }

  write(line: (log: Logger) => void): void {
    // The interval opens with its first line and closes on a timer, which then writes the summary.
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.flush(), this.#intervalMs);
      this.#timer.unref();
    }
    if (this.#written < this.#limit) {
      this.#written++;
      line(this.#log);
    } else {
      this.#suppressed++;
    }
  }

  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#suppressed > 0) {
      this.#log.warn(
        { kind: this.#kind, suppressed: this.#suppressed, logged: this.#written, intervalMs: this.#intervalMs },
        `${this.#suppressed} more ${this.#kind} line(s) suppressed (at most ${this.#limit} per ${this.#intervalMs / 1000} s)`,
      );
    }
    this.#written = 0;
    this.#suppressed = 0;
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/**
 * What a worker pool does when one of its instances dies: it replaces it, unless instances keep
 * dying, in which case replacing them would only spin and the model is better marked unavailable.
 */

export interface CrashLoopPolicy {
  /** This many crashes within `windowMs` make a crash loop. */
  maxCrashes: number;
  windowMs: number;
}

export const DEFAULT_CRASH_LOOP_POLICY: CrashLoopPolicy = { maxCrashes: 5, windowMs: 60_000 };

/** What the pool reports about its instances' lives, for logs and model state. */
export interface SupervisorEvents {
  /** An instance died (or a replacement failed to start); a replacement follows unless the pool gives up. */
  instanceCrashed?(event: { instance: number; cause: string }): void;
  /** A replacement instance is loaded, warmed up and taking requests. */
  instanceReplaced?(event: { instance: number; loadMs: number; warmupMs: number }): void;
  /** Crash loop: the pool stops replacing instances and refuses requests with `reason`. */
  gaveUp?(reason: string): void;
}

/** Crash times in a sliding window. */
export class CrashLoopDetector {
  readonly #policy: CrashLoopPolicy;
  #crashes: number[] = [];

  constructor(policy: CrashLoopPolicy = DEFAULT_CRASH_LOOP_POLICY) {
    this.#policy = policy;
  }

  /** Records a crash; returns the crash-loop reason when this one completes a loop, undefined otherwise. */
  record(cause: string, now = Date.now()): string | undefined {
    this.#crashes = this.#crashes.filter((at) => now - at < this.#policy.windowMs);
    this.#crashes.push(now);
    if (this.#crashes.length < this.#policy.maxCrashes) return undefined;
    return (
      `crash loop: ${this.#crashes.length} instance crashes within ${this.#policy.windowMs / 1000} s ` +
      `(limit ${this.#policy.maxCrashes}); instances are no longer replaced; last cause: ${cause}`
    );
  }
}

/**
 * Worker threads run below the main thread. The main thread only moves bytes (HTTP, health checks,
 * the queues); inference workers and the ONNX Runtime threads they start keep every core busy while
 * a model computes. At equal priority a health check or a small request could wait for the
 * scheduler behind them: measured in bench/RESULTS.md (issue 16, worker threads' niceness), the
 * health answer's p99 during a 30 MB request fell from 0.9-2.9 ms to 0.3 ms with the workers at
 * nice 5. When the cores are idle a lower priority costs nothing: it only decides who goes first.
 *
 * Linux gives each thread its own nice value (setpriority on its thread id), inherited by the
 * threads it starts, so ONNX Runtime's intra-op threads, created by the worker when it makes a
 * session, follow the worker. Elsewhere the same call would reach the whole process; there the
 * workers keep the main thread's priority.
 */
import { readlinkSync } from 'node:fs';
import os from 'node:os';

/** Worker threads' nice value above the main thread's (0-19; 0 keeps them equal). */
export const DEFAULT_WORKER_NICE = 5;

/** Highest nice value Linux accepts (the lowest priority). */
export const MAX_NICE = 19;

export function checkNice(nice: number): void {
  if (!Number.isInteger(nice) || nice < 0 || nice > MAX_NICE) {
    throw new RangeError(`worker nice must be an integer from 0 to ${MAX_NICE}, got ${nice}`);
  }
}

/**
 * Lowers the calling thread's priority by `nice` steps (only ever lowers: raising it back would need
 * privileges). Call it before the thread starts threads of its own. Never throws for the system's
 * sake: returns why the attempt failed (no /proc/thread-self in a sandbox, setpriority refused), or
 * undefined when the priority was lowered or there was nothing to do (nice 0, not Linux).
 */
export function lowerThisThreadPriority(nice: number): string | undefined {
  checkNice(nice);
  if (nice === 0 || process.platform !== 'linux') return undefined;
  try {
    // /proc/thread-self is this thread's own entry: "<pid>/task/<tid>".
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    os.setPriority(tid, Math.min(MAX_NICE, os.getPriority(tid) + nice));
    return undefined;
  } catch (error) {
    return `worker threads keep the main thread's priority: lowering it by ${nice} failed (${(error as Error).message})`;
  }
}

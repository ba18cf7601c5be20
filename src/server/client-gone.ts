/**
 * A client that hangs up before its answer takes its queued request with it (not out of a running
 * batch). Read from the response's own state and listened for only while the request waits in the
 * queue: lighter than an AbortController, its signal and a closure per request (a hot-path cost).
 */
import type { ServerResponse } from 'node:http';
import type { CancelSignal } from '../scheduler/model-queue.js';

export class ClientGone implements CancelSignal {
  readonly #response: ServerResponse;

  constructor(response: ServerResponse) {
    this.#response = response;
  }

  /** The connection closed before the answer was written. */
  get aborted(): boolean {
    return this.#response.closed && !this.#response.writableEnded;
  }

  // Once whatever `options` say: a response emits 'close' once, so `on` does (without `once`'s wrapper,
  // a closure per request). Its 'close' also comes after a written answer; the queue has let go of the
  // listener by then.
  addEventListener(_type: 'abort', listener: () => void, _options?: { once?: boolean }): void {
    this.#response.on('close', listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    this.#response.off('close', listener);
  }
}

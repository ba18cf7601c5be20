/**
 * A bounded closed-loop load generator for the fault tests: `concurrency` clients on keep-alive
 * connections, each sending its next request when the last one is answered, until told to stop or
 * until `maxRequests` have been sent. Every request's outcome is recorded, so a test can account for
 * each one: answered (with its status and body) or failed at the connection.
 */
import { encodeBinaryRequest } from '../../src/protocol/binary-extension.js';
import type { NamedTensor } from '../../src/protocol/datatypes.js';
import { within } from './wait.js';

export interface Outcome {
  /** performance.now() when the request was sent and when its answer (or connection error) came. */
  sentAt: number;
  doneAt: number;
  status?: number;
  body?: any;
  /** The connection error, for requests that got no HTTP answer. */
  error?: string;
}

export interface LoadRequest {
  url: string;
  body: Buffer | string;
  headers: Record<string, string>;
}

/** A JSON inference request for one FP32 tensor filled with `value`. */
export function jsonRequest(url: string, name: string, shape: number[], value = 0.5): LoadRequest {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    url,
    body: JSON.stringify({ inputs: [{ name, datatype: 'FP32', shape, data: new Array(size).fill(value) }] }),
    headers: { 'content-type': 'application/json' },
  };
}

/** The same as a binary-extension request (large tensors), outputs asked for as binary too. */
export function binaryRequest(url: string, name: string, shape: number[], value = 0.5): LoadRequest {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(value);
  const tensor: NamedTensor = { name, datatype: 'FP32', shape, data };
  const encoded = encodeBinaryRequest({ inputs: [tensor], parameters: { binary_data_output: true } });
  return {
    url,
    body: Buffer.concat(encoded.chunks, encoded.byteLength),
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(encoded.headerLength),
    },
  };
}

export class LoadGenerator {
  readonly outcomes: Outcome[] = [];
  #stopped = false;
  #finished = false;
  #done: Promise<void>;
  #onOutcome: (() => void)[] = [];

  constructor(request: LoadRequest, options: { concurrency: number; maxRequests: number }) {
    const client = async () => {
      while (!this.#stopped && this.outcomes.length < options.maxRequests) {
        const outcome: Outcome = { sentAt: performance.now(), doneAt: 0 };
        this.outcomes.push(outcome);
        try {
          // A lost request shows up as an error outcome instead of hanging the test.
          const response = await fetch(request.url, {
            method: 'POST',
            // Uncompressed answers, as the project's client asks: fetch would ask gzip, and the
            // server's compressing outputs would compete with inference for the cores under test.
            headers: { 'accept-encoding': 'identity', ...request.headers },
            body: request.body,
            signal: AbortSignal.timeout(60_000),
          });
          outcome.status = response.status;
          const bytes = Buffer.from(await response.arrayBuffer());
          const headerLength = response.headers.get('inference-header-content-length');
          const json = headerLength === null ? bytes : bytes.subarray(0, Number(headerLength));
          outcome.body = JSON.parse(json.toString('utf8'));
        } catch (error) {
          outcome.error = String((error as Error).cause ?? error);
        }
        outcome.doneAt = performance.now();
        for (const listener of this.#onOutcome.splice(0)) listener();
      }
    };
    this.#done = Promise.all(Array.from({ length: options.concurrency }, client)).then(() => {
      this.#finished = true;
    });
  }

  /** Resolves once `count` requests have been answered (or the load is over); fails after `timeoutMs`. */
  async answered(count: number, timeoutMs = 60_000): Promise<void> {
    const waiting = async () => {
      while (this.outcomes.filter((o) => o.doneAt > 0).length < count && !this.#finished) {
        await Promise.race([new Promise<void>((resolve) => this.#onOutcome.push(resolve)), this.#done]);
      }
    };
    await within(`${count} answered requests`, waiting(), timeoutMs);
  }

  /** Stops sending and waits for every request sent to be answered. */
  async stop(): Promise<Outcome[]> {
    this.#stopped = true;
    await this.#done;
    return this.outcomes;
  }

  /** Waits for the clients to finish on their own (maxRequests reached, or every client stopped). */
  async finished(): Promise<Outcome[]> {
    await this.#done;
    return this.outcomes;
  }
}

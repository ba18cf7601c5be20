import {
  decodeBinaryResponse,
  encodeBinaryRequest,
  HEADER_LENGTH_HEADER,
  parseHeaderLength,
} from '../protocol/binary-extension.js';
import type { Datatype } from '../protocol/datatypes.js';
import type { InferenceRequest, Parameters } from '../protocol/json-codec.js';
import { encodeJsonRequest } from '../protocol/json-encode.js';
import { toInferResult, toNamedTensors, type InferInputs, type InferResult } from '../protocol/typed-tensors.js';
import { InferenceServerError, retryAfterMs } from './errors.js';

export interface InferenceClientOptions {
  /** Milliseconds a call may take, retries and their waits included (default 60 000; 0 for none). */
  timeoutMs?: number;
  /** How many times a 503 answer is retried, after the wait its Retry-After asks for (default 1). */
  retries?: number;
  /** The longest wait before a retry, whatever Retry-After says, in ms (default 10 000). */
  maxRetryDelayMs?: number;
  /** Wait before a retry when a 503 has no Retry-After, in ms (default 1 000). */
  defaultRetryDelayMs?: number;
  /** Infer requests whose input data exceed this many bytes go binary unless the call says otherwise (default 16 KiB). */
  binaryThresholdBytes?: number;
  /**
   * Headers sent with every request (authorization, …). By default the client asks for answers
   * uncompressed (`accept-encoding: identity`), which Node's fetch would otherwise ask gzip for: on
   * loopback and in a cluster, compressing tensors costs the server more CPU than it saves (a 7.9 MB
   * JSON answer takes about 360 ms to gzip). Pass `accept-encoding: gzip` to have them compressed.
   * Browsers decide this header themselves.
   */
  headers?: Record<string, string>;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** Options every call takes. */
export interface CallOptions {
  /** Sent as X-Request-Id; the server logs it with the request. */
  requestId?: string;
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Overrides the client's timeoutMs for this call. */
  timeoutMs?: number;
}

export interface ModelCallOptions extends CallOptions {
  /** A model version; without it the server picks one. */
  version?: string;
}

export interface InferOptions extends ModelCallOptions {
  /** Send the inputs as binary tensors (true) or JSON (false); by default binary above binaryThresholdBytes. */
  binary?: boolean;
  /** Ask for the outputs as binary tensors; by default, as the inputs were sent. */
  binaryOutputs?: boolean;
  /** Outputs to return, in this order (default: all, in model order). */
  outputs?: string[];
  /** The request's `id`, echoed in the answer. */
  id?: string;
  parameters?: Parameters;
}

export interface PredictOptions extends ModelCallOptions {
  /** The image's media type (default: from a Blob's type, else sniffed from the bytes: JPEG, PNG, WebP, GIF, BMP). */
  contentType?: string;
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface TensorMetadata {
  name: string;
  datatype: Datatype;
  /** -1 marks a variable dimension. */
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

const DEFAULTS = {
  timeoutMs: 60_000,
  retries: 1,
  maxRetryDelayMs: 10_000,
  defaultRetryDelayMs: 1_000,
  binaryThresholdBytes: 16 * 1024,
};

interface RequestSpec extends CallOptions {
  method: 'GET' | 'POST';
  path: string;
  body?: Uint8Array | Blob | string;
  headers?: Record<string, string>;
  /** Statuses that are an answer rather than an error (health: 503 means "not ready"). */
  accept?: readonly number[];
  /** Whether a 503 may be retried. */
  retry: boolean;
}

/**
 * A typed client for the Open Inference Protocol (KServe v2) over HTTP, with Triton's binary tensor
 * extension. Runs in Node 20 and in browsers: it needs only fetch, AbortSignal and TextEncoder.
 */
export class InferenceClient {
  readonly baseUrl: string;
  readonly #options: Required<Omit<InferenceClientOptions, 'fetch' | 'headers'>>;
  readonly #headers: Record<string, string>;
  readonly #fetch: typeof fetch;

  constructor(baseUrl: string, options: InferenceClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.#options = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const value = options[key];
      if (value === undefined) continue;
      if (!Number.isFinite(value) || value < 0) {
        throw new RangeError(`InferenceClient option ${key} must be a non-negative number, got ${String(value)}`);
      }
      this.#options[key] = value;
    }
    this.#headers = { 'accept-encoding': 'identity', ...options.headers };
    // The global fetch must be called unbound from its owner in browsers ("Illegal invocation").
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** Whether the server is live (GET /v2/health/live answers 200). */
  live(options: CallOptions = {}): Promise<boolean> {
    return this.#answersOk('/v2/health/live', options);
  }

  /** Whether the server is ready to infer (GET /v2/health/ready answers 200). */
  ready(options: CallOptions = {}): Promise<boolean> {
    return this.#answersOk('/v2/health/ready', options);
  }

  /** Whether a model (version) is ready; an unknown model throws a 404 InferenceServerError. */
  modelReady(model: string, options: ModelCallOptions = {}): Promise<boolean> {
    return this.#answersOk(`${modelPath(model, options.version)}/ready`, options);
  }

  async serverMetadata(options: CallOptions = {}): Promise<ServerMetadata> {
    return (await this.#send({ ...options, method: 'GET', path: '/v2', retry: true }).then(readJson)) as ServerMetadata;
  }

  async modelMetadata(model: string, options: ModelCallOptions = {}): Promise<ModelMetadata> {
    const path = modelPath(model, options.version);
    return (await this.#send({ ...options, method: 'GET', path, retry: true }).then(readJson)) as ModelMetadata;
  }

  /** Runs a model on typed tensors; see InferOptions for the encoding on the wire. */
  async infer(model: string, inputs: InferInputs, options: InferOptions = {}): Promise<InferResult> {
    const tensors = toNamedTensors(inputs);
    const binary = options.binary ?? byteSizeOf(tensors.map((t) => t.data)) > this.#options.binaryThresholdBytes;
    const binaryOutputs = options.binaryOutputs ?? binary;
    const request: InferenceRequest = { inputs: tensors };
    if (options.id !== undefined) request.id = options.id;
    const parameters = { ...options.parameters, ...(binaryOutputs ? { binary_data_output: true } : {}) };
    if (Object.keys(parameters).length > 0) request.parameters = parameters;
    if (options.outputs !== undefined) request.outputs = options.outputs.map((name) => ({ name }));

    let body: Uint8Array | string;
    const headers: Record<string, string> = {};
    if (binary) {
      const encoded = encodeBinaryRequest(request);
      body = concat(encoded.chunks, encoded.byteLength);
      headers['content-type'] = 'application/octet-stream';
      headers[HEADER_LENGTH_HEADER] = String(encoded.headerLength);
    } else {
      body = encodeJsonRequest(request);
      headers['content-type'] = 'application/json';
    }
    const path = `${modelPath(model, options.version)}/infer`;
    const response = await this.#send({ ...options, method: 'POST', path, body, headers, retry: true });
    const bytes = new Uint8Array(await response.arrayBuffer());
    const headerLength = parseHeaderLength(response.headers.get(HEADER_LENGTH_HEADER) ?? undefined, bytes.length);
    return toInferResult(decodeBinaryResponse(bytes, headerLength || undefined));
  }

  /**
   * Posts an image to the model's predict endpoint (models with preprocessing and postprocessing)
   * and returns the server's JSON answer.
   */
  async predict<T = unknown>(
    model: string,
    image: Uint8Array | ArrayBuffer | Blob,
    options: PredictOptions = {},
  ): Promise<T> {
    const body = image instanceof ArrayBuffer ? new Uint8Array(image) : image;
    const contentType = options.contentType ?? (await imageTypeOf(body));
    const path = `${modelPath(model, options.version)}/predict`;
    const headers = { 'content-type': contentType };
    return (await this.#send({ ...options, method: 'POST', path, body, headers, retry: true }).then(readJson)) as T;
  }

  /** Health answers: the status code is the answer (200 yes, 503 no), and a retry would only delay it. */
  async #answersOk(path: string, options: CallOptions): Promise<boolean> {
    const response = await this.#send({ ...options, method: 'GET', path, accept: [503], retry: false });
    return response.ok;
  }

  /** One call: headers, timeout and cancellation, a retry on 503 after Retry-After, errors as InferenceServerError. */
  async #send(spec: RequestSpec): Promise<Response> {
    const headers: Record<string, string> = { ...this.#headers, ...spec.headers };
    if (spec.requestId !== undefined) headers['x-request-id'] = spec.requestId;
    const timeoutMs = spec.timeoutMs ?? this.#options.timeoutMs;
    const signals = [spec.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined];
    const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
    const url = `${this.baseUrl}${spec.path}`;

    for (let attempt = 0; ; attempt++) {
      const response = await this.#fetch(url, {
        method: spec.method,
        headers,
        signal,
        ...(spec.body === undefined ? {} : { body: spec.body }),
      });
      if (response.ok || spec.accept?.includes(response.status)) return response;
      const error = await errorOf(response, spec.requestId);
      if (!(spec.retry && response.status === 503 && attempt < this.#options.retries)) throw error;
      const wait = Math.min(error.retryAfterMs ?? this.#options.defaultRetryDelayMs, this.#options.maxRetryDelayMs);
      await sleep(wait, signal);
    }
  }
}

function modelPath(model: string, version: string | undefined): string {
  const base = `/v2/models/${encodeURIComponent(model)}`;
  return version === undefined ? base : `${base}/versions/${encodeURIComponent(version)}`;
}

async function readJson(response: Response): Promise<unknown> {
  return response.json();
}

/** The server's `{error}` message (or its plain text), status and Retry-After as one error. */
async function errorOf(response: Response, requestId: string | undefined): Promise<InferenceServerError> {
  const text = await response.text();
  let message = text.length > 0 ? text : `HTTP ${response.status} ${response.statusText}`;
  let code: string | undefined;
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body === 'object' && body !== null) {
      const { error, code: bodyCode } = body as { error?: unknown; code?: unknown };
      if (typeof error === 'string') message = error;
      if (typeof bodyCode === 'string') code = bodyCode;
    }
  } catch {
    // Not JSON: the text itself is the message.
  }
  const retryAfter = retryAfterMs(response.headers.get('retry-after'));
  return new InferenceServerError(response.status, message, {
    ...(code === undefined ? {} : { code }),
    ...(requestId === undefined ? {} : { requestId }),
    ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }),
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Bytes of tensor data (strings counted as UTF-16 code units: an estimate is enough to choose an encoding). */
function byteSizeOf(data: readonly (ArrayBufferView | string[])[]): number {
  let size = 0;
  for (const item of data) {
    if (Array.isArray(item)) for (const string of item) size += 4 + string.length;
    else size += item.byteLength;
  }
  return size;
}

function concat(chunks: readonly Uint8Array[], byteLength: number): Uint8Array {
  const body = new Uint8Array(byteLength);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

const IMAGE_SIGNATURES: readonly [type: string, matches: (b: Uint8Array) => boolean][] = [
  ['image/jpeg', (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['image/png', (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47],
  ['image/gif', (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38],
  ['image/webp', (b) => b[0] === 0x52 && b[1] === 0x49 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42],
  ['image/bmp', (b) => b[0] === 0x42 && b[1] === 0x4d],
];

async function imageTypeOf(image: Uint8Array | Blob): Promise<string> {
  if (image instanceof Blob && image.type.startsWith('image/')) return image.type;
  const head = image instanceof Blob ? new Uint8Array(await image.slice(0, 12).arrayBuffer()) : image.subarray(0, 12);
  const found = IMAGE_SIGNATURES.find(([, matches]) => matches(head));
  if (found === undefined) {
    throw new TypeError(
      'predict: cannot tell the image type from its bytes (JPEG, PNG, GIF, WebP or BMP); pass contentType',
    );
  }
  return found[0];
}

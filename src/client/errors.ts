/** An error answer from an inference server: its HTTP status and, word for word, its message. */
export class InferenceServerError extends Error {
  /** The HTTP status (400 invalid input, 404 unknown model, 503 unavailable or overloaded, …). */
  readonly status: number;
  /** A stable error code, where the server sends one with the message. */
  readonly code?: string;
  /** The X-Request-Id the request carried, for finding it in the server's logs. */
  readonly requestId?: string;
  /** What the server's Retry-After header asked for, in milliseconds. */
  readonly retryAfterMs?: number;

  constructor(
    status: number,
    message: string,
    details: { code?: string; requestId?: string; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = 'InferenceServerError';
    this.status = status;
    if (details.code !== undefined) this.code = details.code;
    if (details.requestId !== undefined) this.requestId = details.requestId;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
  }
}

/**
 * Retry-After as milliseconds from `now`: delta-seconds or an HTTP date (RFC 9110 §10.2.3);
 * undefined when the header is absent or unreadable.
 */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

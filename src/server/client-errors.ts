import type { Socket } from 'node:net';
import type { RequestLimits } from '../core/request-limits.js';

/**
 * Node rejects some requests before fastify sees them (headers over maxHeaderSize, malformed HTTP);
 * they get the same `{error}` JSON as every other error instead of a bare status line.
 */
export function clientErrorHandler(limits: RequestLimits) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const [status, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [
            '431 Request Header Fields Too Large',
            `the request line and headers are larger than the limit of ${limits.maxHeaderSize} bytes (--max-header-size)`,
          ]
        : ['400 Bad Request', `malformed HTTP request (${error.code ?? error.message})`];
    const body = JSON.stringify({ error: message });
    socket.end(
      `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };
}

import net from 'node:net';

export interface RawAnswer {
  /** The status code of the first response, or undefined when the server closed without answering. */
  status?: number;
  /** Everything the server sent. */
  text: string;
  /** Whether the server closed (or reset) the connection before the deadline. */
  closed: boolean;
  /** An error the socket reported (ECONNRESET for a refused or cut connection). */
  error?: string;
}

/**
 * Sends raw bytes over one TCP connection and collects what comes back until the server closes the
 * connection or `deadlineMs` passes (then the client closes it). `hold`: after writing, leave the
 * connection open instead of answering after the first response.
 */
export function rawExchange(
  url: string,
  bytes: Buffer | string,
  options: { deadlineMs: number; untilFirstResponse?: boolean } = { deadlineMs: 5000 },
): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let text = '';
    let error: string | undefined;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ ...(match ? { status: Number(match[1]) } : {}), text, closed, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish(false), options.deadlineMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (options.untilFirstResponse === true && completeResponse(text)) finish(false);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('close', () => finish(true));
  });
}

/** Whether `text` holds a whole response with a Content-Length body. */
function completeResponse(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, end));
  return length !== null && text.length - end - 4 >= Number(length[1]);
}

/** A request head for `path` with the given headers (Host added). */
export function requestHead(method: string, path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries({ host: 'localhost', ...headers }).map(([name, value]) => `${name}: ${value}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

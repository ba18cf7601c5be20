import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** How long a client may take and how many connections the HTTP server holds at once. */
export interface ConnectionLimits {
  /** Time from a connection's first byte (or the end of its last answer) until the request line and headers are in. */
  headersTimeoutMs: number;
  /** Time for the whole request, headers and body, to arrive; the answer's own time does not count. */
  requestTimeoutMs: number;
  /** Time an idle keep-alive connection is kept after its last answer. */
  keepAliveTimeoutMs: number;
  /** Open HTTP connections; one more is closed as soon as it is accepted. */
  maxConnections: number;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
// Above the 60 s idle timeout of the common load balancers (AWS ALB, nginx upstream keepalive), so the
// server never closes a connection the balancer is about to reuse; fastify's own default.
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 72_000;

// File descriptors kept out of the connection cap: model files, worker threads' handles, logs, the
// gRPC listener and its clients, DNS and the like.
const RESERVED_FDS_MIN = 64;
const RESERVED_FDS_SHARE = 1 / 8;
// Where the limit of open files cannot be read (not Linux), the usual soft limit.
const ASSUMED_FD_LIMIT = 1024;

/**
 * The default cap on connections: the process's soft limit of open files less a reserve (1/8 of it,
 * at least 64), so that silent sockets run into the cap, which refuses them at once, before they run
 * into the fd limit, which would refuse every client with ECONNRESET until they go.
 */
export function defaultMaxConnections(limitsFile = '/proc/self/limits'): number {
  const softLimit = openFilesLimit(limitsFile) ?? ASSUMED_FD_LIMIT;
  const reserve = Math.max(RESERVED_FDS_MIN, Math.ceil(softLimit * RESERVED_FDS_SHARE));
  return Math.max(1, softLimit - reserve);
}

/** The soft RLIMIT_NOFILE from /proc/self/limits; undefined when unknown or unlimited. */
function openFilesLimit(limitsFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\d+)/m.exec(text)?.[1];
  return soft === undefined ? undefined : Number(soft);
}

/** The limits with defaults filled in; a headers timeout longer than the request timeout is a RangeError. */
export function connectionLimits(given: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const limits: ConnectionLimits = {
    headersTimeoutMs: given.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: given.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: given.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    maxConnections: given.maxConnections ?? defaultMaxConnections(),
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError(
      `the headers timeout (${limits.headersTimeoutMs / 1000} s, --headers-timeout-secs) must not be longer than ` +
        `the request timeout (${limits.requestTimeoutMs / 1000} s, --request-timeout-secs), which includes the headers`,
    );
  }
  return limits;
}

/**
 * The fastify options that apply the timeouts. Node checks them on a timer, not per socket:
 * `connectionsCheckingInterval` (30 s by default, which let slow headers live ~90 s) is set to a
 * quarter of the shorter timeout, at most 1 s, so a connection is cut within 25 % of its timeout.
 */
export function timeoutServerOptions(limits: ConnectionLimits) {
  const shortest = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(shortest / 4))),
    },
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
  };
}

// Sockets the server cut because their request was too slow: the request they carried then fails
// with an 'aborted' error, which counts as a client timeout rather than as the client going away.
const cutByTimeout = new WeakSet<Socket>();

export function markCutByTimeout(socket: Socket): void {
  cutByTimeout.add(socket);
}

export function wasCutByTimeout(socket: Socket | null | undefined): boolean {
  return socket !== null && socket !== undefined && cutByTimeout.has(socket);
}

// A connection that has sent nothing for this long is taken for a silent one when the cap is hit.
const SILENT_AFTER_MS = 1000;

/**
 * When the cap turns a connection away, makes room for the next one: the oldest connection that has
 * sent no byte for a second is closed, or else the idle keep-alive connections. So silent sockets
 * can hold the cap only until clients with requests arrive, not until the headers timeout.
 */
export function evictSilentConnectionsAtCap(server: Server, onEvict: (kind: 'silent' | 'idle') => void): void {
  const open = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    open.set(socket, performance.now());
    socket.once('close', () => open.delete(socket));
  });
  server.on('drop', () => {
    const silentSince = performance.now() - SILENT_AFTER_MS;
    // Map iteration follows insertion: the first match is the oldest.
    for (const [socket, openedAt] of open) {
      if (openedAt > silentSince) break;
      if (socket.bytesRead === 0) {
        socket.destroy();
        onEvict('silent');
        return;
      }
    }
    server.closeIdleConnections();
    onEvict('idle');
  });
}

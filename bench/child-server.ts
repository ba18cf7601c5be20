/**
 * Starting a server as its own process for a benchmark, as users run it: a free loopback port, the
 * child's exit noticed while waiting, readiness polled with a deadline; a timed liveness check.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { createServer } from 'node:net';
import { DEPLOYED_NODE_FLAGS } from '../test/helpers/deployed-settings.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** A node process with `args`; its stderr shows in the benchmark's (a server that fails says why). */
export function startChild(args: string[]): ChildProcess {
  return spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** An onnx-serve process (`args`: its CLI file, `serve`, options) with node's flags as deployed. */
export function startServerChild(args: string[]): ChildProcess {
  return startChild([...DEPLOYED_NODE_FLAGS, ...args]);
}

/** Polls `url` until it answers 200 (2 minutes at most), failing early if the child exits. */
export async function waitFor(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} never answered 200`);
}

/** One GET /v2/health/live over `agent`: its round trip in ms; rejects on any status but 200. */
export function timedLiveCheck(base: string, agent: http.Agent): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const started = performance.now();
    http
      .get(`${base}/v2/health/live`, { agent }, (response) => {
        response.resume();
        response.on('end', () =>
          response.statusCode === 200
            ? resolve(performance.now() - started)
            : reject(new Error(`/v2/health/live answered ${response.statusCode}`)),
        );
        response.on('error', reject);
      })
      .on('error', reject);
  });
}

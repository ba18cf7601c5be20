/**
 * From `npm start` to `/v2/health/ready` answering 200, on an already-built checkout with the
 * default models (issue 17: at most 5 s). Each run spawns `npm start` on a free port (gRPC off:
 * its default port is fixed), polls readiness every 50 ms, then stops the server with SIGTERM.
 * Usage: node --import tsx bench/start-to-ready.ts [runs]
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { createInterface } from 'node:readline';

const runs = Number(process.argv[2] ?? 3);
const DEADLINE_MS = 120_000;

async function once(): Promise<{ listeningMs: number; readyMs: number }> {
  const started = performance.now();
  const child = spawn('npm', ['start', '--', '--port', '0', '--grpc-port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no URL in the log within the deadline')), DEADLINE_MS);
      child.once('exit', (code) => reject(new Error(`npm start exited with ${code} before listening`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (!line.startsWith('{')) return;
        const event = JSON.parse(line) as { url?: string };
        if (event.url !== undefined) {
          clearTimeout(timer);
          resolve(event.url);
        }
      });
    });
    const listeningMs = performance.now() - started;
    while (performance.now() - started < DEADLINE_MS) {
      const ready = await fetch(`${url}/v2/health/ready`).then(
        (response) => response.status === 200,
        () => false,
      );
      if (ready) return { listeningMs, readyMs: performance.now() - started };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`not ready within ${DEADLINE_MS} ms`);
  } finally {
    // npm runs the server in a child shell: signal the whole group.
    process.kill(-child.pid!, 'SIGTERM');
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
  }
}

console.log(
  `node ${process.version}, ${os.cpus().length} CPUs, load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
for (let run = 1; run <= runs; run += 1) {
  const { listeningMs, readyMs } = await once();
  console.log(
    `run ${run}: listening after ${(listeningMs / 1000).toFixed(2)} s, ready after ${(readyMs / 1000).toFixed(2)} s` +
      ` (load average ${os.loadavg()[0].toFixed(2)})`,
  );
}

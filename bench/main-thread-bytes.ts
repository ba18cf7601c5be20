/**
 * Bytes the server's main thread allocates per inference request, binary and JSON, for
 * text-orientation and text-recognizer: the default repository served in this process, the client in
 * a worker thread (its own heap), and the main thread's V8 heap and ArrayBuffer usage compared
 * before and after N requests with no garbage collection in between (checked; a large young
 * generation makes room; where a collection ran anyway, again with half as many requests).
 * Run: npm run bench:bytes [-- N] (N requests per case, default 20).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { syntheticInputs } from '../src/bench/targets.js';
import { encodeRequest, type WireEncoding } from '../src/bench/wire.js';
import { startServer } from '../src/server/start.js';

const requests = Number(process.argv[2] ?? 20);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

// The client: sequential keep-alive requests, in its own thread so its allocations are not counted.
const CLIENT = `
const http = require('node:http');
const { parentPort } = require('node:worker_threads');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
parentPort.on('message', async ({ url, body, headers, count }) => {
  const target = new URL(url);
  for (let i = 0; i < count; i++) {
    await new Promise((resolve, reject) => {
      const request = http.request({ agent, host: target.hostname, port: target.port, path: target.pathname,
        method: 'POST', headers: { ...headers, 'content-length': String(body.length) } }, (response) => {
        response.on('data', () => {});
        response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error('HTTP ' + response.statusCode))));
      });
      request.on('error', reject);
      request.end(Buffer.from(body));
    });
  }
  parentPort.postMessage('done');
});`;

let collections = 0;
new PerformanceObserver((list) => (collections += list.getEntries().length)).observe({ entryTypes: ['gc'] });

const server = await startServer({ port: 0, logLevel: 'warn' });
const client = new Worker(CLIENT, { eval: true });
let clientError: Error | undefined;
client.on('error', (error) => (clientError = error));
const send = (url: string, body: Buffer, headers: Record<string, string>, count: number) =>
  new Promise<void>((resolve, reject) => {
    client.once('message', () => (clientError === undefined ? resolve() : reject(clientError)));
    client.postMessage({ url, body: new Uint8Array(body), headers, count });
  });

try {
  process.stdout.write(`| model | encoding | request body | heap / request | ArrayBuffers / request | requests |\n`);
  process.stdout.write(`|---|---|---:|---:|---:|---:|\n`);
  for (const [model, shape] of [
    ['text-orientation', [1, 3, 48, 192]],
    ['text-recognizer', [1, 3, 48, 320]],
  ] as const) {
    for (const encoding of ['binary', 'json'] as WireEncoding[]) {
      const inputs = syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [...shape] });
      const { body, headers } = encodeRequest({ inputs }, encoding);
      const url = `${server.url}/v2/models/${model}/infer`;
      await send(url, body, headers, 5); // warm: JIT, sockets, arena
      let result: string | undefined;
      let count = requests;
      for (let attempt = 0; attempt < 6 && result === undefined; attempt++, count = Math.max(2, count >> 1)) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 20)); // the observer hears of the forced GC later
        const seen = collections;
        const heapBefore = v8.getHeapStatistics().used_heap_size;
        const buffersBefore = process.memoryUsage().arrayBuffers;
        await send(url, body, headers, count);
        const heap = (v8.getHeapStatistics().used_heap_size - heapBefore) / count;
        const buffers = (process.memoryUsage().arrayBuffers - buffersBefore) / count;
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (collections === seen) {
          result = `| ${model} | ${encoding} | ${kib(body.length)} | ${kib(heap)} | ${kib(buffers)} | ${count} |`;
        }
      }
      process.stdout.write(
        `${result ?? `| ${model} | ${encoding} | ${kib(body.length)} | (a GC ran every time) | |`}\n`,
      );
    }
  }
} finally {
  await client.terminate();
  await server.close();
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * The HTTP route's cancellation handle over a real node:http exchange: aborted (and its listener
 * called) when the client hangs up before its answer, not when the answer was written.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { ClientGone } from '../../src/server/client-gone.js';
import { waitUntil } from '../helpers/wait.js';

/** A server whose handler gets each request's handle; closed when the test ends. */
async function serverWith(onRequest: (gone: ClientGone, response: http.ServerResponse) => void) {
  const server = http.createServer((request, response) => {
    request.resume();
    onRequest(new ClientGone(response), response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

test('a client that hangs up before its answer aborts the handle and calls its listener', async (t) => {
  let handle: ClientGone | undefined;
  let called = 0;
  const { server, port } = await serverWith((gone) => {
    handle = gone;
    assert.equal(gone.aborted, false);
    gone.addEventListener('abort', () => called++, { once: true });
  });
  t.after(() => server.close());
  const request = http.request({ port, host: '127.0.0.1', method: 'POST' });
  request.on('error', () => {}); // it is destroyed on purpose
  request.write('x');
  await waitUntil('the request to reach the server', () => handle !== undefined, { timeoutMs: 5000 });
  request.destroy();
  await waitUntil('the handle to see the client gone', () => called === 1, { timeoutMs: 5000 });
  assert.equal(handle!.aborted, true);
});

test('an answered request is not aborted, and a removed listener is not called', async (t) => {
  let handle: ClientGone | undefined;
  let called = 0;
  let closed = false;
  const listener = () => called++;
  const { server, port } = await serverWith((gone, response) => {
    handle = gone;
    response.on('close', () => (closed = true));
    gone.addEventListener('abort', listener, { once: true });
    gone.removeEventListener('abort', listener);
    response.end('done');
  });
  t.after(() => server.close());
  const body = await new Promise<string>((resolve, reject) => {
    http
      .get({ port, host: '127.0.0.1', agent: false }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve(text));
        response.on('error', reject);
      })
      .on('error', reject);
  });
  assert.equal(body, 'done');
  await waitUntil('the response to close', () => closed, { timeoutMs: 5000 });
  assert.equal(handle!.aborted, false);
  assert.equal(called, 0);
});

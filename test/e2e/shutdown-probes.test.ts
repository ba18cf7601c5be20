/**
 * Shutdown as Kubernetes sees it, over real sockets: from close() on, /v2/health/ready answers 503
 * while /v2/health/live answers 200 until the listener closes, last of all; an upload accepted
 * before still gets its answer; new inference requests after the grace point get 503.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { it } from 'node:test';
import { rawExchange, requestHead } from '../helpers/raw-http.js';
import { clsRepository } from '../helpers/repository.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

const INFER = '/v2/models/cls/infer';
const SHUTTING_DOWN = 'onnx-serve is shutting down and accepts no new requests; retry on another instance';
const SHAPE = [1, 3, 48, 192];
const request = { inputs: [{ name: 'x', datatype: 'FP32', shape: SHAPE, data: new Array(3 * 48 * 192).fill(0.5) }] };
// Loopback and an idle server: headers sent this long ago have surely been read.
const ACCEPTED_MARGIN_MS = 300;
const DEADLINE_MS = 10_000;

/** An upload the server has accepted: headers and half the body in, the rest sent by `finish`. */
async function openUpload(url: string) {
  const { hostname, port } = new URL(url);
  const body = Buffer.from(JSON.stringify(request));
  const socket = net.connect(Number(port), hostname);
  socket.on('error', () => {});
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.on('close', resolve));
  socket.write(requestHead('POST', INFER, { 'content-type': 'application/json', 'content-length': body.length }));
  socket.write(body.subarray(0, body.length / 2));
  await new Promise((resolve) => setTimeout(resolve, ACCEPTED_MARGIN_MS));
  return {
    /** Sends the rest and resolves with what the server answered once it closed the connection. */
    async finish(): Promise<string> {
      socket.write(body.subarray(body.length / 2));
      await closed;
      return answer;
    },
    destroy: () => socket.destroy(),
  };
}

it('during the drain: ready 503, live 200, new inference 503, an accepted upload answered; then the port closes', async () => {
  const server = await startTestServer({ modelRepository: await clsRepository(SHAPE) });
  const upload = await openUpload(server.url);
  try {
    const closed = server.close();
    assert.deepEqual(await getJson(`${server.url}/v2/health/ready`).then((r) => [r.status, r.body]), [
      503,
      { ready: false },
    ]);
    assert.deepEqual(await getJson(`${server.url}/v2/health/live`).then((r) => [r.status, r.body]), [
      200,
      { live: true },
    ]);
    const refused = await postJson(`${server.url}${INFER}`, request);
    assert.deepEqual([refused.status, refused.body], [503, { error: SHUTTING_DOWN }]);
    // Live still answers on a connection of its own, while the upload is open.
    const probe = await rawExchange(server.url, requestHead('GET', '/v2/health/live', {}), { deadlineMs: DEADLINE_MS });
    assert.equal(probe.status, 200, probe.text);

    const answer = await upload.finish();
    assert.match(answer, /^HTTP\/1\.1 200 /, answer.slice(0, 300));
    assert.match(answer, /"model_name":"cls"/);
    await closed;
    await assert.rejects(fetch(`${server.url}/v2/health/live`), 'the port is closed once the drain is over');
  } finally {
    upload.destroy();
    await server.close();
  }
});

it('a shutdown delay serves new requests while ready already says 503, then refuses them', async () => {
  const server = await startTestServer({ modelRepository: await clsRepository(SHAPE), shutdownDelayMs: 1500 });
  let upload: Awaited<ReturnType<typeof openUpload>> | undefined;
  try {
    const closed = server.close();
    assert.equal((await getJson(`${server.url}/v2/health/ready`)).status, 503);
    assert.equal((await postJson(`${server.url}${INFER}`, request)).status, 200, 'served before the grace point');
    // Accepted before the grace point, it keeps the drain (and the port) open after it.
    upload = await openUpload(server.url);
    const deadline = performance.now() + DEADLINE_MS;
    let late = await postJson(`${server.url}${INFER}`, request);
    while (late.status === 200 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      late = await postJson(`${server.url}${INFER}`, request);
    }
    assert.deepEqual([late.status, late.body], [503, { error: SHUTTING_DOWN }]);
    assert.equal((await getJson(`${server.url}/v2/health/live`)).status, 200);
    assert.match(await upload.finish(), /^HTTP\/1\.1 200 /);
    await closed;
  } finally {
    upload?.destroy();
    await server.close();
  }
});

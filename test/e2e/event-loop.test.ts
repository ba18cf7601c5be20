/**
 * Inference runs in worker threads: while text-detector works through a large image, the main
 * thread keeps answering /v2/health/live. A server that called session.run on the main thread
 * would answer none of these polls until the inference ended.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { RunningServer } from '../../src/server/start.js';
import {
  encodeBinaryRequest,
  decodeBinaryResponse,
  HEADER_LENGTH_HEADER,
} from '../../src/protocol/binary-extension.js';
import { startTestServer } from '../helpers/server.js';

let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(async () => server?.close());

it('answers /v2/health/live during a long inference', async (t) => {
  // The largest side the default detector takes (config.yaml input max_dims): a run of a second or more.
  const side = 1280;
  // Binary in and out: decoding a JSON tensor this big would itself occupy the main thread for a
  // second, and this test is about inference, not about JSON.
  const body = encodeBinaryRequest({
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [1, 3, side, side], data: new Float32Array(3 * side * side).fill(0.5) },
    ],
    parameters: { binary_data_output: true },
  });
  const started = performance.now();
  let inferenceMs = 0;
  const inference = fetch(`${server.url}/v2/models/text-detector/infer`, {
    method: 'POST',
    signal: AbortSignal.timeout(120_000),
    headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH_HEADER]: String(body.headerLength) },
    body: Buffer.concat(body.chunks),
  }).then(async (response) => {
    const bytes = new Uint8Array(await response.arrayBuffer());
    inferenceMs = performance.now() - started;
    return { status: response.status, header: response.headers.get(HEADER_LENGTH_HEADER), bytes };
  });

  const polls: number[] = [];
  // Poll until the inference has ended; the request itself is served by the same main thread.
  let done = false;
  void inference.finally(() => (done = true));
  while (!done) {
    const t = performance.now();
    const response = await fetch(`${server.url}/v2/health/live`);
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    if (!done) polls.push(performance.now() - t);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const result = await inference;
  assert.equal(result.status, 200);
  const decoded = decodeBinaryResponse(result.bytes, Number(result.header));
  assert.deepEqual(decoded.outputs[0].shape, [1, 1, side, side]);

  // Behaviour, not a timing target: many polls were answered while the inference ran, and no
  // single poll waited anywhere near as long as the inference (which a blocked loop would force).
  assert.ok(
    polls.length >= 5,
    `only ${polls.length} health polls were answered during a ${Math.round(inferenceMs)} ms inference`,
  );
  const slowest = Math.max(...polls);
  t.diagnostic(
    `${polls.length} polls, slowest ${slowest.toFixed(1)} ms, during a ${inferenceMs.toFixed(0)} ms inference`,
  );
  assert.ok(
    slowest < inferenceMs / 4,
    `a health poll took ${Math.round(slowest)} ms during a ${Math.round(inferenceMs)} ms inference`,
  );
});

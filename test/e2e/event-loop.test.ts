/**
 * Inference runs in worker threads: while text-detector works through a large image, the main
 * thread keeps answering /v2/health/live. A server that called session.run on the main thread
 * would answer none of these polls until the inference ended.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { RunningServer } from '../../src/server/start.js';
import { postJson, startTestServer } from '../helpers/server.js';

let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(async () => server?.close());

it('answers /v2/health/live during a long inference', async () => {
  const side = 1600;
  const data = new Array(3 * side * side).fill(0.5);
  const started = performance.now();
  let inferenceMs = 0;
  const inference = postJson(`${server.url}/v2/models/text-detector/infer`, {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, side, side], data }],
  }).then((response) => {
    inferenceMs = performance.now() - started;
    return response;
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
  assert.deepEqual(result.body.outputs[0].shape, [1, 1, side, side]);

  // Behaviour, not a timing target: many polls were answered while the inference ran, and no
  // single poll waited anywhere near as long as the inference (which a blocked loop would force).
  assert.ok(
    polls.length >= 5,
    `only ${polls.length} health polls were answered during a ${Math.round(inferenceMs)} ms inference`,
  );
  const slowest = Math.max(...polls);
  assert.ok(
    slowest < inferenceMs / 4,
    `a health poll took ${Math.round(slowest)} ms during a ${Math.round(inferenceMs)} ms inference`,
  );
});

/**
 * A flood from a process of its own, for bench/many-models.ts `--flood-process`: closed-loop binary
 * requests of one row to one model, CONCURRENCY in flight for SECONDS. A probe timed in the bench's
 * own process then shares no event loop with the flood's client, as a model's users would not.
 * Prints `flooding` once past its warm-up, then the level's result as one JSON line.
 * Usage: node --import tsx bench/flood-client.ts URL WIDTH CONCURRENCY SECONDS
 */
import { runLevel } from '../src/bench/load-generator.js';
import { httpTarget, syntheticInputs } from '../src/bench/targets.js';
import { encodeRequest } from '../src/bench/wire.js';

const [url, width, concurrency, seconds] = process.argv.slice(2);
if (seconds === undefined) throw new Error('usage: flood-client.ts URL WIDTH CONCURRENCY SECONDS');
const body = encodeRequest(
  { inputs: syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [1, Number(width)] }) },
  'binary',
);
const inFlight = Number(concurrency);
const target = httpTarget(url, body, inFlight);
try {
  // Warm-up: connections open and the model's first runs done before the measured flood.
  await Promise.all(Array.from({ length: inFlight }, () => target.send()));
  console.log('flooding');
  const result = await runLevel(target.send, {
    concurrency: inFlight,
    items: 1,
    durationS: Number(seconds),
    warmup: 0,
  });
  console.log(JSON.stringify(result));
} finally {
  target.close();
}

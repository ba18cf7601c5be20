/**
 * Large JSON requests are parsed and decoded, and large JSON answers printed, in a codec thread
 * (src/server/json-codec-pool.ts) instead of the main thread. The answers and error messages must be
 * exactly those of the main-thread codec: every request below goes to a server that decodes and
 * prints everything on its main thread and to one that sends everything to the codec thread (small
 * bodies too), and big bodies also to a server with the default thresholds; the answers must match
 * byte for byte (the server's timing parameters aside).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_JSON_WORKER_THRESHOLDS } from '../../src/server/routes/infer.js';
import type { RunningServer } from '../../src/server/start.js';
import { writeIdentityModel } from '../helpers/onnx-builder.js';
import { startTestServer } from '../helpers/server.js';

let repository: string;
let inline: RunningServer;
let offloaded: RunningServer;
let defaults: RunningServer;

before(async () => {
  repository = await mkdtemp(path.join(os.tmpdir(), 'onnx-serve-json-worker-'));
  await writeIdentityModel(repository, 'every', ['FP32', 'FP16', 'INT64', 'UINT64', 'INT8', 'BYTES']);
  for (const datatype of ['FP32', 'INT64', 'INT8'] as const) {
    await writeIdentityModel(repository, datatype.toLowerCase(), [datatype]);
  }
  [inline, offloaded, defaults] = await Promise.all([
    startTestServer({
      modelRepository: repository,
      jsonWorkers: { minBodyBytes: Infinity, minOutputElements: Infinity },
    }),
    startTestServer({ modelRepository: repository, jsonWorkers: { minBodyBytes: 0, minOutputElements: 0 } }),
    startTestServer({ modelRepository: repository }),
  ]);
});

after(async () => {
  await Promise.all([inline?.close(), offloaded?.close(), defaults?.close()]);
  await rm(repository, { recursive: true, force: true });
});

interface Answer {
  status: number;
  type: string | null;
  text: string;
}

async function post(server: RunningServer, model: string, body: string): Promise<Answer> {
  const response = await fetch(`${server.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'accept-encoding': 'identity' },
    body,
  });
  const text = await response.text();
  // The server's own timings differ from run to run; everything else must not.
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    text: text.replace(/"parameters":\{"queue_ms":[^}]*\}/, '"parameters":{}'),
  };
}

/** The same body to the main-thread server and to `other`: the same answer, which is returned. */
async function sameAnswer(model: string, body: string, other: RunningServer): Promise<Answer> {
  const [expected, actual] = await Promise.all([post(inline, model, body), post(other, model, body)]);
  assert.deepEqual(actual, expected);
  return actual;
}

const tensor = (name: string, datatype: string, shape: number[], data: unknown) => ({ name, datatype, shape, data });
const request = (...inputs: unknown[]) => JSON.stringify({ inputs });

describe('JSON decoded in the codec thread answers as the main thread does', () => {
  it('exact values: INT64 and UINT64 beyond 2^53, NaN and Infinity, nested data, BYTES, FP16', async () => {
    const body =
      '{"id":"r1","inputs":[' +
      '{"name":"x_int64","datatype":"INT64","shape":[1,3],"data":[9007199254740993,-9223372036854775808,9223372036854775807]},' +
      '{"name":"x_uint64","datatype":"UINT64","shape":[1,2],"data":[18446744073709551615,9007199254740993]},' +
      '{"name":"x_fp32","datatype":"FP32","shape":[2,3],"data":[[1.5,"NaN","Infinity"],["-Infinity",3.4e38,-0]]},' +
      '{"name":"x_fp16","datatype":"FP16","shape":[1,2],"data":[65504,0.1]},' +
      '{"name":"x_int8","datatype":"INT8","shape":[1,2],"data":[-128,127]},' +
      '{"name":"x_bytes","datatype":"BYTES","shape":[1,2],"data":["a","é\\u0001"]}' +
      '],"outputs":[{"name":"y_int64"},{"name":"y_uint64"},{"name":"y_fp32"},{"name":"y_fp16"},{"name":"y_int8"},{"name":"y_bytes"}]}';
    const answer = await sameAnswer('every', body, offloaded);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.type, 'application/json');
    assert.match(answer.text, /\[9007199254740993,-9223372036854775808,9223372036854775807\]/);
    assert.match(answer.text, /\[18446744073709551615,9007199254740993\]/);
    // FP32 and FP16 print as the shortest decimal reading back as the same float32: 3.4e38 was
    // 3.3999999521443642e+38 as a float64, FP16 0.1 (0.0999755859375) is 0.099975586.
    assert.match(answer.text, /\[1\.5,"NaN","Infinity","-Infinity",3\.4e\+38,-0\]/);
    assert.match(answer.text, /\[65504,0\.099975586\]/);
    assert.match(answer.text, /"id":"r1"/);
  });

  const errors: Array<[string, string, string]> = [
    ['malformed JSON', 'fp32', '{"inputs":[{"name":"x_fp32"'],
    ['not an object', 'fp32', '[1,2,3]'],
    ['no inputs', 'fp32', '{"outputs":[]}'],
    ['data length', 'fp32', request(tensor('x_fp32', 'FP32', [1, 4], [1, 2, 3]))],
    ['element kind', 'fp32', request(tensor('x_fp32', 'FP32', [1, 3], [1, 'abc', 3]))],
    ['FP32 out of range', 'fp32', request(tensor('x_fp32', 'FP32', [1, 2], [1, 1e39]))],
    [
      'INT64 beyond 2^63',
      'int64',
      '{"inputs":[{"name":"x_int64","datatype":"INT64","shape":[1,1],"data":[9223372036854775808]}]}',
    ],
    ['INT8 out of range', 'int8', request(tensor('x_int8', 'INT8', [1, 2], [1, 128]))],
    ['nested too deep', 'fp32', request(tensor('x_fp32', 'FP32', [1, 2], [[[1], [2]]]))],
    ['nested row length', 'fp32', request(tensor('x_fp32', 'FP32', [2, 2], [[1, 2], [3]]))],
    // The model's signature is checked before the data: the rank, not the short data, is the answer.
    ['rank against the model', 'fp32', request(tensor('x_fp32', 'FP32', [1, 2, 2], [1]))],
    ['datatype against the model', 'fp32', request(tensor('x_fp32', 'FP64', [1, 2], [1, 2]))],
    ['unknown input', 'fp32', request(tensor('nope', 'FP32', [1, 1], [1]))],
    // Over --max-tensor-elements: refused on the header, before anything is allocated for the data.
    ['header limit', 'fp32', request(tensor('x_fp32', 'FP32', [1, 2 ** 40], [1]))],
    [
      'binary_data_size without the header',
      'fp32',
      JSON.stringify({
        inputs: [{ name: 'x_fp32', datatype: 'FP32', shape: [1, 1], parameters: { binary_data_size: 4 } }],
      }),
    ],
  ];
  for (const [what, model, body] of errors) {
    it(`the same error: ${what}`, async () => {
      const answer = await sameAnswer(model, body, offloaded);
      assert.ok(answer.status >= 400, `${what}: ${answer.status} ${answer.text}`);
      assert.match(answer.text, /^\{"error":".+"\}$/);
    });
  }
});

describe('big JSON bodies (over the default threshold) answer as the main thread does', () => {
  const count = 200_000;
  const floats = Array.from({ length: count }, (_, i) =>
    i === 7 ? '"NaN"' : i === 8 ? '"-Infinity"' : String(Math.fround(Math.sin(i) * 1000)),
  );
  const bigFp32 = `{"inputs":[{"name":"x_fp32","datatype":"FP32","shape":[1,${count}],"data":[${floats.join(',')}]}]}`;

  it('is over the threshold the default server uses', () => {
    assert.ok(bigFp32.length >= DEFAULT_JSON_WORKER_THRESHOLDS.minBodyBytes * 4);
    assert.ok(count >= DEFAULT_JSON_WORKER_THRESHOLDS.minOutputElements * 4);
  });

  it('FP32, flat and nested, with NaN and Infinity strings', async () => {
    const flat = await sameAnswer('fp32', bigFp32, defaults);
    assert.equal(flat.status, 200, flat.text.slice(0, 300));
    const answer = JSON.parse(flat.text) as { outputs: Array<{ name: string; data: unknown[] }> };
    const y = answer.outputs.find((output) => output.name === 'y_fp32')!;
    assert.equal(y.data.length, count);
    assert.equal(y.data[7], 'NaN');
    assert.equal(y.data[8], '-Infinity');
    // Printed as the shortest decimal that reads back as the same float32 (412.1185, not 412.1184997558594).
    assert.equal(y.data[9], 412.1185);
    for (let index = 0; index < count; index++) {
      if (index === 7 || index === 8) continue;
      assert.equal(Math.fround(y.data[index] as number), Math.fround(Math.sin(index) * 1000), `element ${index}`);
    }

    const rows = [];
    for (let row = 0; row < 400; row++) rows.push(`[${floats.slice(row * 500, row * 500 + 500).join(',')}]`);
    const nested = `{"inputs":[{"name":"x_fp32","datatype":"FP32","shape":[400,500],"data":[${rows.join(',')}]}]}`;
    const nestedAnswer = await sameAnswer('fp32', nested, defaults);
    assert.equal(nestedAnswer.status, 200);
  });

  it('INT64 beyond 2^53, exactly', async () => {
    const values = Array.from({ length: 50_000 }, (_, i) => (2n ** 62n + BigInt(i) * 9_999_999_999n).toString());
    const body = `{"inputs":[{"name":"x_int64","datatype":"INT64","shape":[1,${values.length}],"data":[${values.join(',')}]}],"outputs":[{"name":"y_int64"}]}`;
    const answer = await sameAnswer('int64', body, defaults);
    assert.equal(answer.status, 200);
    assert.ok(answer.text.includes(`[${values.join(',')}]`), 'the INT64 values came back exactly');
  });

  it('the same errors: a bad element near the end, a short body, malformed text, a shape the model refuses', async () => {
    const bad = bigFp32.replace(`,${floats[count - 3]},`, ',"abc",');
    const badAnswer = await sameAnswer('fp32', bad, defaults);
    assert.equal(badAnswer.status, 400);
    assert.match(badAnswer.text, /element 199997/);
    const short = bigFp32.replace(`[1,${count}]`, `[1,${count + 1}]`);
    assert.equal((await sameAnswer('fp32', short, defaults)).status, 400);
    const malformed = bigFp32.slice(0, -10);
    assert.match((await sameAnswer('fp32', malformed, defaults)).text, /malformed JSON in request body/);
    const rank = bigFp32.replace(`[1,${count}]`, `[1,1,${count}]`);
    assert.match((await sameAnswer('fp32', rank, defaults)).text, /shape/);
  });

  it('keeps serving after many big bodies at once', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => post(defaults, 'fp32', bigFp32)));
    for (const answer of answers) assert.equal(answer.status, 200);
    const small = await post(defaults, 'fp32', request(tensor('x_fp32', 'FP32', [1, 2], [1, 2])));
    assert.equal(small.status, 200);
  });
});

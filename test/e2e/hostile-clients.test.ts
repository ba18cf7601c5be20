/**
 * What a careless or hostile client can send over a real socket: truncated and aborted multipart
 * uploads, stalled headers and bodies, more connections than the server takes. None of it ends the
 * process or holds a connection past its timeout, and the server keeps answering everyone else.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { RunningServer } from '../../src/server/start.js';
import { rawExchange, requestHead, type RawAnswer } from '../helpers/raw-http.js';
import { writeIdentityModel } from '../helpers/onnx-builder.js';
import { clsRepository } from '../helpers/repository.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';
import { capturingLogger } from '../helpers/log-capture.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

/** The orientation classifier as an image model, so that /predict reads multipart uploads. */
const IMAGE_MODEL_CONFIG = [
  'instances: 1',
  'preprocess: { resize: { mode: fixed_height, height: 48, min_width: 192, max_width: 192 }, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }',
  'postprocess: { type: top_k, k: 2 }',
].join('\n');
const PREDICT = '/v2/models/cls/predict';
const BOUNDARY = 'cut-here-7d1f';

async function multipartBody(): Promise<Buffer> {
  const png = await sharp({ create: { width: 24, height: 12, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  const part = (headers: string, content: Buffer | string) =>
    Buffer.concat([Buffer.from(`--${BOUNDARY}\r\n${headers}\r\n\r\n`), Buffer.from(content), Buffer.from('\r\n')]);
  return Buffer.concat([
    part('Content-Disposition: form-data; name="note"', 'a field the server ignores'),
    part('Content-Disposition: form-data; name="a"; filename="a.png"\r\nContent-Type: image/png', png),
    part('Content-Disposition: form-data; name="b"; filename="b.png"\r\nContent-Type: image/png', png),
    Buffer.from(`--${BOUNDARY}--\r\n`),
  ]);
}

async function post(url: string, body: Buffer): Promise<{ status: number; body: any }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    body,
  });
  return { status: response.status, body: await response.json() };
}

describe('multipart uploads cut short', () => {
  let server: RunningServer;
  let body: Buffer;
  before(async () => {
    server = await startTestServer({ modelRepository: await clsRepository([1, 3, 48, 192], IMAGE_MODEL_CONFIG) });
    body = await multipartBody();
  });
  after(async () => server?.close());

  it('every prefix of a valid body is answered 400 naming the problem, the whole body 200', async () => {
    const closing = body.lastIndexOf(`--${BOUNDARY}--`);
    const answers = new Map<number, number>();
    for (let length = 0; length < body.length; length++) {
      const { status, body: answer } = await post(`${server.url}${PREDICT}`, body.subarray(0, length));
      answers.set(status, (answers.get(status) ?? 0) + 1);
      // Cut after the closing delimiter began, the body may already hold every part in full.
      if (length >= closing + BOUNDARY.length + 4 && status === 200) continue;
      assert.equal(status, 400, `prefix of ${length} of ${body.length} bytes: ${JSON.stringify(answer)}`);
      assert.match(
        answer.error,
        /^(multipart\/form-data body (cannot be read|has no file parts)|request body is empty|image file [ab]\.png cannot be decoded)/,
        `prefix of ${length} bytes`,
      );
    }
    assert.ok((answers.get(400) ?? 0) >= closing, JSON.stringify([...answers]));
    const whole = await post(`${server.url}${PREDICT}`, body);
    assert.equal(whole.status, 200, JSON.stringify(whole.body));
    assert.equal(whole.body.results.length, 2);
  });

  it('uploads the client abandons part-way leave the server answering', async () => {
    const head = requestHead('POST', PREDICT, {
      'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
      'content-length': body.length,
    });
    for (let length = 1; length < body.length; length += 17) {
      await new Promise<void>((resolve, reject) => {
        const { hostname, port } = new URL(server.url);
        const socket = net.connect(Number(port), hostname, () => {
          socket.write(Buffer.concat([Buffer.from(head), body.subarray(0, length)]), () => {
            socket.destroy();
            resolve();
          });
        });
        socket.on('error', reject);
      });
    }
    assert.equal((await getJson(`${server.url}/v2/health/live`)).status, 200);
    assert.equal((await post(`${server.url}${PREDICT}`, body)).status, 200);
  });

  it('a body the multipart parser rejects outright, on a raw socket: 400 and the connection still served', async () => {
    const junk = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="a"; filename="a.png"\r\n\r\nPNG`);
    const answer = await rawExchange(
      server.url,
      Buffer.concat([
        Buffer.from(
          requestHead('POST', PREDICT, {
            'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
            'content-length': junk.length,
          }),
        ),
        junk,
      ]),
      { deadlineMs: 5000, untilFirstResponse: true },
    );
    assert.equal(answer.status, 400, answer.text);
    assert.match(answer.text, /multipart\/form-data body cannot be read: Unexpected end of multipart data/);
  });
});

describe('multipart forms with too many parts', () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ modelRepository: await clsRepository([1, 3, 48, 192], IMAGE_MODEL_CONFIG) });
  });
  after(async () => server?.close());

  const form = (fields: number, files: number) => {
    const parts: string[] = [];
    for (let i = 0; i < fields; i++) parts.push(`Content-Disposition: form-data; name="f${i}"\r\n\r\nv`);
    for (let i = 0; i < files; i++)
      parts.push(
        `Content-Disposition: form-data; name="i${i}"; filename="${i}.png"\r\nContent-Type: image/png\r\n\r\nx`,
      );
    return Buffer.from(parts.map((part) => `--${BOUNDARY}\r\n${part}\r\n`).join('') + `--${BOUNDARY}--\r\n`);
  };

  it('fields, files and parts over their caps: 413 naming the cap, found as the form is parsed', async () => {
    const fields = await post(`${server.url}${PREDICT}`, form(200_000, 0));
    assert.deepEqual(fields, {
      status: 413,
      body: { error: 'more than 16 non-file fields in one multipart request; send at most 16' },
    });
    const files = await post(`${server.url}${PREDICT}`, form(0, 33));
    assert.deepEqual(files, {
      status: 413,
      body: { error: 'more than 32 files in one multipart request; send at most 32' },
    });
    const parts = await post(`${server.url}${PREDICT}`, form(16, 32));
    // At the caps the form is read through, and its one-byte "images" are refused as such.
    assert.equal(parts.status, 415, JSON.stringify(parts.body));
    assert.match(parts.body.error, /^file \d+\.png is not an image/);
  });
});

/** The server's Prometheus samples, as a lookup by name and labels. */
async function metricsOf(server: RunningServer) {
  const samples = parseExposition(await (await fetch(`${server.url}/metrics`)).text());
  return (name: string, labels: Record<string, string> = {}) => sampleValue(samples, `onnx_serve_${name}`, labels);
}

const INFER = '/v2/models/cls/infer';
// Short, so the test takes a second or two; the server checks them every quarter of the shortest.
const HEADERS_TIMEOUT_MS = 400;
const REQUEST_TIMEOUT_MS = 800;
const KEEP_ALIVE_TIMEOUT_MS = 400;
// Far beyond any of the timeouts: an answer after it means the connection was never cut.
const DEADLINE_MS = 8000;

describe('slow and silent clients are cut at their timeouts', () => {
  let server: RunningServer;
  const captured = capturingLogger('info');
  before(async () => {
    server = await startTestServer({
      logger: captured.log,
      modelRepository: await clsRepository([1, 3, 48, 192]),
      bodyLimit: 64 * 1024,
      connections: {
        headersTimeoutMs: HEADERS_TIMEOUT_MS,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
      },
    });
  });
  after(async () => server?.close());

  it('headers that never finish, and a connection that sends nothing: 408 naming the option, then closed', async () => {
    const [partial, silent] = await Promise.all([
      rawExchange(server.url, 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ', { deadlineMs: DEADLINE_MS }),
      rawExchange(server.url, '', { deadlineMs: DEADLINE_MS }),
    ]);
    for (const answer of [partial, silent]) {
      assert.equal(answer.closed, true, 'the server closed the connection');
      assert.equal(answer.status, 408, answer.text);
      assert.match(
        answer.text,
        /\{"error":"the request line and headers did not arrive within the headers timeout \(--headers-timeout-secs\)"\}$/,
      );
    }
    const count = await metricsOf(server);
    assert.equal(count('http_client_errors_total', { reason: 'headers_timeout' }), 2);
  });

  it('bodies that stall, between chunks or inside one: 408, closed, counted as client timeouts of the model', async () => {
    const head = (headers: Record<string, string | number>) =>
      requestHead('POST', INFER, { 'content-type': 'application/json', ...headers });
    const chunked = head({ 'transfer-encoding': 'chunked' });
    const answers = await Promise.all([
      // A body of 1000 bytes that stops after 12.
      rawExchange(server.url, head({ 'content-length': 1000 }) + '{"inputs": [', { deadlineMs: DEADLINE_MS }),
      // A chunked body that stops between chunks, and one that stops inside a chunk.
      rawExchange(server.url, chunked + 'c\r\n{"inputs": [\r\n', { deadlineMs: DEADLINE_MS }),
      rawExchange(server.url, chunked + '40\r\n{"inputs": [', { deadlineMs: DEADLINE_MS }),
    ]);
    for (const answer of answers) {
      assert.equal(answer.closed, true, 'the server closed the connection');
      assert.equal(answer.status, 408, answer.text);
      assert.match(
        answer.text,
        /the request body did not arrive within the request timeout \(--request-timeout-secs\)/,
      );
    }
    const count = await metricsOf(server);
    assert.equal(count('http_client_errors_total', { reason: 'body_timeout' }), 3);
    assert.equal(count('inference_request_failure_total', { model: 'cls', reason: 'client_timeout' }), 3);
    assert.equal(count('inference_request_failure_total', { model: 'cls', reason: 'internal' }), undefined);
  });

  it('a body sent a byte at a time is cut at the request timeout, not kept alive by each byte', async () => {
    const { hostname, port } = new URL(server.url);
    const socket = net.connect(Number(port), hostname);
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), DEADLINE_MS);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    socket.write(requestHead('POST', INFER, { 'content-type': 'application/json', 'content-length': 1000 }));
    // A byte every 50 ms: never idle for long, but the 1000 bytes would take 50 s.
    const drip = setInterval(() => socket.writable && socket.write(' '), 50);
    try {
      assert.equal(await closed, true, 'the server closed the connection');
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    assert.match(text, /^HTTP\/1\.1 408 /);
  });

  it('oversize bodies and abandoned uploads count under their own reasons and log at warn, not as errors', async () => {
    const big = await postJson(`${server.url}${INFER}`, 'x'.repeat(65 * 1024));
    assert.equal(big.status, 413, JSON.stringify(big.body));
    const { hostname, port } = new URL(server.url);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () =>
        socket.write(requestHead('POST', INFER, { 'content-length': 1000 }) + '{"inputs"', () => {
          socket.destroy();
          resolve();
        }),
      );
      socket.on('error', reject);
    });
    const deadline = performance.now() + DEADLINE_MS;
    let count = await metricsOf(server);
    while (count('inference_request_failure_total', { model: 'cls', reason: 'aborted' }) === undefined) {
      assert.ok(performance.now() < deadline, 'the abandoned upload was counted');
      await new Promise((resolve) => setTimeout(resolve, 20));
      count = await metricsOf(server);
    }
    assert.equal(count('inference_request_failure_total', { model: 'cls', reason: 'aborted' }), 1);
    assert.equal(count('inference_request_failure_total', { model: 'cls', reason: 'too_large' }), 1);
    assert.equal(count('inference_request_failure_total', { model: 'cls', reason: 'internal' }), undefined);
    const failures = captured.lines.filter((line) => /^inference failed/.test(String(line.msg)));
    // Every failed inference of this server so far was the client's doing: each logged at warn (40).
    assert.deepEqual(new Set(failures.map((line) => line.level)), new Set([40]));
    assert.deepEqual(new Set(failures.map((line) => line.reason)), new Set(['client_timeout', 'too_large', 'aborted']));
    assert.deepEqual(
      captured.lines.filter((line) => line.level >= 50),
      [],
    );
  });

  it('a zero or overflowing dimension is a 400 or 413 from the codec, never an onnxruntime 500', async () => {
    const ask = (shape: number[]) =>
      postJson(`${server.url}${INFER}`, { inputs: [{ name: 'x', datatype: 'FP32', shape, data: [] }] });
    assert.deepEqual(await ask([0, 3, 48, 2 ** 40]).then((answer) => [answer.status, answer.body]), [
      400,
      {
        error:
          'inputs[0].shape[0] is 0 in [0,3,48,1099511627776]; every dimension must be at least 1 (empty tensors are not run)',
      },
    ]);
    const huge = await ask([1, 3, 48, 2 ** 40]);
    assert.equal(huge.status, 413, JSON.stringify(huge.body));
    assert.match(huge.body.error, /the limit is 67108864 per tensor \(--max-tensor-elements\)/);
    const overflowing = await ask([2 ** 30, 2 ** 30, 2 ** 30, 2 ** 30]);
    assert.equal(overflowing.status, 400, JSON.stringify(overflowing.body));
    assert.match(overflowing.body.error, /holds more than 2\^53 elements/);
  });

  it('an idle keep-alive connection is closed after its timeout; a prompt client is served', async () => {
    const idle = await rawExchange(server.url, requestHead('GET', '/v2/health/live', {}), { deadlineMs: DEADLINE_MS });
    assert.equal(idle.status, 200, idle.text);
    assert.equal(idle.closed, true, 'the server closed the idle connection');
    assert.equal((await getJson(`${server.url}/v2/health/ready`)).status, 200);
  });
});

describe('more connections than the cap', () => {
  const CAP = 4;
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({
      modelRepository: await clsRepository([1, 3, 48, 192]),
      connections: { maxConnections: CAP },
    });
  });
  after(async () => server?.close());

  it('silent sockets fill the cap: one more is closed at once, and makes a silent one give way to the next client', async () => {
    const { hostname, port } = new URL(server.url);
    let closedByServer = 0;
    const silent = await Promise.all(
      Array.from(
        { length: CAP },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const socket = net.connect(Number(port), hostname, () => resolve(socket));
            socket.on('error', reject);
            socket.on('close', () => closedByServer++);
          }),
      ),
    );
    try {
      // Fresh silent sockets might be clients about to speak: the one past the cap is refused.
      const refused = await rawExchange(server.url, requestHead('GET', '/v2/health/live', {}), {
        deadlineMs: DEADLINE_MS,
      });
      assert.equal(refused.closed, true, 'closed by the server, not left waiting');
      assert.equal(refused.status, undefined, refused.text);
      assert.equal(closedByServer, 0);

      // Silent for over a second, they give way: each refusal closes the oldest, so a client retrying gets in.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const deadline = performance.now() + DEADLINE_MS;
      let served: RawAnswer;
      do {
        served = await rawExchange(server.url, requestHead('GET', '/metrics', { connection: 'close' }), {
          deadlineMs: DEADLINE_MS,
        });
      } while (served.status === undefined && performance.now() < deadline);
      assert.equal(served.status, 200, served.text);
      assert.equal(closedByServer, 1, 'one silent socket was closed to make room');
      const samples = parseExposition(served.text.slice(served.text.indexOf('\r\n\r\n') + 4));
      assert.equal(sampleValue(samples, 'onnx_serve_http_max_connections'), CAP);
      assert.equal(sampleValue(samples, 'onnx_serve_http_connections'), CAP);
      assert.ok(sampleValue(samples, 'onnx_serve_http_connections_refused_total')! >= 2);
      assert.equal(sampleValue(samples, 'onnx_serve_http_connections_evicted_total', { kind: 'silent' }), 1);
    } finally {
      for (const socket of silent) socket.destroy();
    }
  });
});

describe('bounded memory for bodies and answers', () => {
  const MAX_INFLIGHT = 100_000;
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({
      modelRepository: await clsRepository([1, 3, 48, 192]),
      bodyLimit: 64 * 1024,
      maxInflightBytes: MAX_INFLIGHT,
    });
  });
  after(async () => server?.close());

  /** A POST whose headers declare `length` bytes and whose body has not come yet. */
  async function heldUpload(length: number, headers: Record<string, string | number> = {}) {
    const { hostname, port } = new URL(server.url);
    const socket = net.connect(Number(port), hostname);
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.on('close', resolve));
    await new Promise<void>((resolve) =>
      socket.write(
        requestHead('POST', INFER, {
          'content-type': 'application/json',
          'content-length': length,
          connection: 'close',
          ...headers,
        }),
        () => resolve(),
      ),
    );
    return {
      /** Sends a body of the declared length; resolves with the answer once the server closes. */
      async send(): Promise<string> {
        socket.write('x'.repeat(length));
        await closed;
        return text;
      },
      destroy: () => socket.destroy(),
    };
  }

  it('bodies being received at once are bounded: one more gets 503 with Retry-After before it is read', async () => {
    const first = await heldUpload(40_000);
    const second = await heldUpload(40_000);
    try {
      // The reservations are taken once the headers are read; ask until the third is refused.
      const deadline = performance.now() + DEADLINE_MS;
      let third: RawAnswer;
      do {
        third = await rawExchange(
          server.url,
          requestHead('POST', INFER, { 'content-type': 'application/json', 'content-length': 40_000 }),
          { deadlineMs: DEADLINE_MS, untilFirstResponse: true },
        );
      } while (third.status !== 503 && performance.now() < deadline);
      assert.equal(third.status, 503, third.text);
      assert.match(third.text, /\r\nretry-after: 1\r\n/i);
      assert.match(
        third.text,
        /request bodies being received hold 80000 bytes; this one's 40000 would pass the bound of 100000 bytes \(--max-inflight-bytes\); retry later/,
      );
      // Once a body is in, its bytes are free again.
      assert.match(await first.send(), /^HTTP\/1\.1 400 /);
      const fourth = await postJson(`${server.url}${INFER}`, 'y'.repeat(40_000));
      assert.equal(fourth.status, 400, JSON.stringify(fourth.body));
    } finally {
      first.destroy();
      second.destroy();
    }
  });

  it('a compressed body reserves the whole body limit: what it decodes to, not its few bytes on the wire', async () => {
    const first = await heldUpload(100, { 'content-encoding': 'gzip' });
    try {
      const deadline = performance.now() + DEADLINE_MS;
      let second: RawAnswer;
      do {
        second = await rawExchange(
          server.url,
          requestHead('POST', INFER, {
            'content-type': 'application/json',
            'content-encoding': 'gzip',
            'content-length': 100,
          }),
          { deadlineMs: DEADLINE_MS, untilFirstResponse: true },
        );
      } while (second.status !== 503 && performance.now() < deadline);
      assert.equal(second.status, 503, second.text);
      assert.match(
        second.text,
        /request bodies being received hold 65536 bytes; this one's 65536 would pass the bound of 100000 bytes \(--max-inflight-bytes\)/,
      );
    } finally {
      first.destroy();
    }
  });
});

it('an answer too large for JSON is refused with 413 advising binary outputs, which serve it', async () => {
  const repository = await mkdtemp(path.join(tmpdir(), 'onnx-serve-identity-'));
  await writeIdentityModel(repository, 'echo', ['FP32']);
  const server = await startTestServer({ modelRepository: repository, limits: { maxJsonOutputElements: 1000 } });
  try {
    const url = `${server.url}/v2/models/echo/infer`;
    const input = { name: 'x_fp32', datatype: 'FP32', shape: [1, 1001], data: new Array(1001).fill(0.25) };
    const json = await postJson(url, { inputs: [input] });
    assert.deepEqual(
      [json.status, json.body],
      [
        413,
        {
          error:
            'the answer holds 1001 output elements, over the limit of 1000 for JSON (--max-json-output-elements); ask for binary outputs ("parameters": {"binary_data_output": true}, see docs/protocol.md) or for fewer outputs',
        },
      ],
    );
    const binary = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [input], parameters: { binary_data_output: true } }),
    });
    assert.equal(binary.status, 200);
    assert.equal(binary.headers.get('content-type'), 'application/octet-stream');
    const fits = await postJson(url, { inputs: [{ ...input, shape: [1, 1000], data: input.data.slice(1) }] });
    assert.equal(fits.status, 200, JSON.stringify(fits.body));
  } finally {
    await server.close();
  }
});

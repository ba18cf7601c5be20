/**
 * How the server reads request bodies (src/server/request-body.ts): a body of known length is copied
 * into one Buffer as its chunks arrive, others are joined at the end. Whatever the chunking, the
 * framing (Content-Length, chunked, gzip) or the number of bodies arriving at once, the model sees
 * exactly the bytes that were sent; the body limit holds on announced, chunked and decoded lengths;
 * a client that goes away mid-body leaves the server serving.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { decodeResponse, encodeRequest, type EncodedRequest } from '../../src/bench/wire.js';
import { HEADER_LENGTH_HEADER } from '../../src/protocol/binary-extension.js';
import type { RunningServer } from '../../src/server/start.js';
import { rawExchange, requestHead } from '../helpers/raw-http.js';
import { writeIdentityModel } from '../helpers/onnx-builder.js';
import { getJson, startTestServer } from '../helpers/server.js';

const BODY_LIMIT = 16 * 1024 * 1024;
const INFER = '/v2/models/fp32/infer';

let repository: string;
let server: RunningServer;

before(async () => {
  repository = await mkdtemp(path.join(tmpdir(), 'onnx-serve-request-body-'));
  await writeIdentityModel(repository, 'fp32', ['FP32']);
  server = await startTestServer({ modelRepository: repository, bodyLimit: BODY_LIMIT });
});

after(async () => {
  await server?.close();
  await rm(repository, { recursive: true, force: true });
});

/** A binary request of `count` distinct floats (seeded), and the floats. */
function binaryRequest(count: number, seed: number): { request: EncodedRequest; data: Float32Array } {
  const data = Float32Array.from({ length: count }, (_, index) => Math.fround(Math.sin(index * 0.37 + seed) * 1e3));
  return {
    request: encodeRequest({ inputs: [{ name: 'x_fp32', datatype: 'FP32', shape: [1, count], data }] }, 'binary'),
    data,
  };
}

interface Sent {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/**
 * POSTs `body` over node:http in the given pieces (each write awaited, a pause every few), with the
 * request's headers plus `extra`; by default with Content-Length, `chunked: true` for Transfer-Encoding.
 */
function sendInPieces(
  request: EncodedRequest,
  pieces: Buffer[],
  options: { chunked?: boolean; extra?: Record<string, string> } = {},
): Promise<Sent> {
  const { hostname, port } = new URL(server.url);
  const length = pieces.reduce((sum, piece) => sum + piece.length, 0);
  return new Promise((resolve, reject) => {
    const outgoing = http.request(
      {
        host: hostname,
        port,
        path: INFER,
        method: 'POST',
        headers: {
          ...request.headers,
          'accept-encoding': 'identity',
          ...(options.chunked === true ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(length) }),
          ...options.extra,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (typeof value === 'string') headers.set(name, value);
          }
          resolve({ status: response.statusCode!, headers, body: new Uint8Array(Buffer.concat(chunks)) });
        });
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    void (async () => {
      for (let index = 0; index < pieces.length; index++) {
        await new Promise<void>((written) => outgoing.write(pieces[index], () => written()));
        if (index % 7 === 6) await new Promise((pause) => setTimeout(pause, 2));
      }
      outgoing.end();
    })();
  });
}

/** `body` cut into pieces of uneven sizes, from 1 byte to 200 KB. */
function unevenPieces(body: Buffer): Buffer[] {
  const sizes = [1, 7, 4096, 65_537, 3, 200_000, 12_345];
  const pieces: Buffer[] = [];
  for (let at = 0, index = 0; at < body.length; index++) {
    const size = sizes[index % sizes.length];
    pieces.push(body.subarray(at, at + size));
    at += size;
  }
  return pieces;
}

function assertEcho(sent: Sent, data: Float32Array, what: string): void {
  assert.equal(sent.status, 200, `${what}: ${Buffer.from(sent.body.subarray(0, 300)).toString()}`);
  const output = decodeResponse(sent.body, sent.headers).outputs.find((tensor) => tensor.name === 'y_fp32')!;
  assert.deepEqual(output.shape, [1, data.length], what);
  const floats = output.data as Float32Array;
  const bytes = Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength);
  assert.ok(bytes.equals(Buffer.from(data.buffer)), `${what}: the same floats`);
}

describe('bodies arrive whole, however they are sent', () => {
  it('a 6 MB binary body in uneven pieces, with Content-Length: the model sees exactly its bytes', async () => {
    const { request, data } = binaryRequest(1_500_000, 1);
    assertEcho(await sendInPieces(request, unevenPieces(request.body)), data, 'Content-Length');
  });

  it('the same body chunked (no Content-Length), and gzip-compressed', async () => {
    const { request, data } = binaryRequest(1_500_000, 2);
    assertEcho(await sendInPieces(request, unevenPieces(request.body), { chunked: true }), data, 'chunked');
    const gzipped = await promisify(zlib.gzip)(request.body);
    const compressed = await sendInPieces(request, unevenPieces(gzipped), { extra: { 'content-encoding': 'gzip' } });
    assertEcho(compressed, data, 'gzip');
  });

  it('binary tensors after a JSON header of every length modulo 8 (aligned in memory or not): the same floats', async () => {
    for (let extra = 0; extra < 8; extra++) {
      const data = Float32Array.from({ length: 50_000 }, (_, index) => index * 0.5 - extra);
      const request = encodeRequest(
        { id: 'i'.repeat(extra), inputs: [{ name: 'x_fp32', datatype: 'FP32', shape: [1, data.length], data }] },
        'binary',
      );
      assertEcho(
        await sendInPieces(request, unevenPieces(request.body)),
        data,
        `header of ${request.headers[HEADER_LENGTH_HEADER]} bytes`,
      );
    }
  });

  it('eight bodies arriving at once, interleaved, each answered with its own floats', async () => {
    const requests = Array.from({ length: 8 }, (_, index) => binaryRequest(200_000 + index * 1000, 10 + index));
    const answers = await Promise.all(requests.map(({ request }) => sendInPieces(request, unevenPieces(request.body))));
    answers.forEach((answer, index) => assertEcho(answer, requests[index].data, `request ${index}`));
  });

  it('a small JSON body, and an empty one (400 naming it)', async () => {
    const json = encodeRequest(
      { inputs: [{ name: 'x_fp32', datatype: 'FP32', shape: [1, 2], data: new Float32Array([0.5, -2]) }] },
      'json',
    );
    const answer = await sendInPieces(json, [json.body.subarray(0, 5), json.body.subarray(5)]);
    assert.equal(answer.status, 200);
    assert.match(Buffer.from(answer.body).toString(), /"data":\[0\.5,-2\]/);
    const empty = await sendInPieces(json, []);
    assert.equal(empty.status, 400);
    assert.match(Buffer.from(empty.body).toString(), /request body is empty/);
  });
});

describe('the body limit and clients that go away', () => {
  const limitMessage = `request body is larger than the limit of ${BODY_LIMIT} bytes (16.0 MiB); raise it with --max-body-size`;

  it('a Content-Length over the limit is 413 before a byte of the body is sent', async () => {
    const head = requestHead('POST', INFER, {
      'content-type': 'application/octet-stream',
      'content-length': BODY_LIMIT + 1,
    });
    const answer = await rawExchange(server.url, head, { deadlineMs: 5000, untilFirstResponse: true });
    assert.equal(answer.status, 413, answer.text);
    assert.ok(answer.text.includes(JSON.stringify({ error: limitMessage })), answer.text);
  });

  it('a chunked body is refused with 413 the moment it passes the limit', async () => {
    const { request } = binaryRequest(BODY_LIMIT / 4 + 1024, 3);
    const answer = await sendInPieces(request, unevenPieces(request.body), { chunked: true }).catch(
      (error: Error) => error,
    );
    // The server answers as soon as the limit is passed and closes; the client may still be writing.
    if (answer instanceof Error) assert.match(answer.message, /EPIPE|ECONNRESET|socket hang up/);
    else {
      assert.equal(answer.status, 413);
      assert.deepEqual(JSON.parse(Buffer.from(answer.body).toString()), { error: limitMessage });
    }
    assert.equal((await getJson(`${server.url}/v2/health/live`)).status, 200);
  });

  it('clients that send part of a body and close leave the server serving everyone else', async () => {
    const { request, data } = binaryRequest(500_000, 4);
    const head = requestHead('POST', INFER, { ...request.headers, 'content-length': request.body.length });
    const { hostname, port } = new URL(server.url);
    for (const sent of [0, 1, 4096, request.body.length >> 1, request.body.length - 1]) {
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(Number(port), hostname, () => {
          socket.write(Buffer.concat([Buffer.from(head), request.body.subarray(0, sent)]), () => {
            socket.destroy();
            resolve();
          });
        });
        socket.on('error', reject);
      });
    }
    assertEcho(await sendInPieces(request, unevenPieces(request.body)), data, 'after the abandoned bodies');
  });
});

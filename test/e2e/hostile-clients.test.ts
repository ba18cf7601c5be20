/**
 * What a careless or hostile client can send over a real socket: truncated and aborted multipart
 * uploads, stalled headers and bodies, more connections than the server takes. None of it ends the
 * process or holds a connection past its timeout, and the server keeps answering everyone else.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { RunningServer } from '../../src/server/start.js';
import { rawExchange, requestHead } from '../helpers/raw-http.js';
import { clsRepository } from '../helpers/repository.js';
import { getJson, startTestServer } from '../helpers/server.js';

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
    assert.match(parts.body.error, /^file 0\.png is not an image/);
  });
});

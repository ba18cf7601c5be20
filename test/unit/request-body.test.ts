/**
 * The request-body reader's edges that Node's HTTP parser never lets a real client reach (a stream
 * that ends short of, or runs past, its Content-Length) and its error paths, on a stream standing in
 * for the request. The e2e test (test/e2e/request-body.test.ts) covers real sockets.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { ServeError } from '../../src/protocol/errors.js';
import { ownsItsMemory, readRequestBody } from '../../src/server/request-body.js';

/** Feeds `chunks` to the reader as the request's own stream; what it hands to `done`. */
function read(
  headers: Record<string, string>,
  chunks: Buffer[],
  options: { limit?: number; fail?: Error; decoded?: boolean } = {},
): Promise<{ error: (Error & { statusCode?: number }) | null; body?: Buffer }> {
  const raw = new PassThrough();
  const payload = options.decoded === true ? new PassThrough() : raw;
  const request = { headers, raw } as unknown as FastifyRequest;
  return new Promise((resolve) => {
    readRequestBody(request, payload, options.limit ?? 1000, (error, body) => resolve({ error, body }));
    for (const chunk of chunks) payload.write(chunk);
    if (options.fail !== undefined) payload.destroy(options.fail);
    else payload.end();
  });
}

/** Reads `bytes` (Content-Length known) asking for the byte at `offset` to be aligned. */
function readAligned(bytes: Buffer, offset: number): Promise<{ body?: Buffer }> {
  const raw = new PassThrough();
  const request = { headers: { 'content-length': String(bytes.length) }, raw } as unknown as FastifyRequest;
  return new Promise((resolve) => {
    readRequestBody(request, raw, 1_000_000, (_error, body) => resolve({ body }), offset);
    raw.end(bytes);
  });
}

describe('readRequestBody', () => {
  it('joins the chunks of a body of known length into one Buffer', async () => {
    const { error, body } = await read({ 'content-length': '7' }, [Buffer.from('abc'), Buffer.from('defg')]);
    assert.equal(error, null);
    assert.equal(body!.toString(), 'abcdefg');
  });

  it('places the byte at alignedOffset on a multiple of 8 in memory, the body still owning its memory', async () => {
    // 100 kB: above what Buffer.allocUnsafe takes from its shared pool (half of Buffer.poolSize: 4 KiB
    // on Node 20, 32 KiB on Node 24), so even an unpadded body has memory of its own.
    for (let offset = 1; offset <= 16; offset++) {
      const bytes = Buffer.alloc(100_000, offset);
      const { body } = await readAligned(bytes, offset);
      assert.ok(body!.equals(bytes), `offset ${offset}: the same bytes`);
      assert.equal((body!.byteOffset + offset) % 8, 0, `offset ${offset}`);
      assert.ok(ownsItsMemory(body!), `offset ${offset}: owns its memory`);
    }
    // A small body comes from Buffer's shared pool: it does not own its memory, and is never handed over.
    const small = await read({ 'content-length': '3' }, [Buffer.from('abc')]);
    assert.equal(ownsItsMemory(small.body!), false);
    assert.equal(ownsItsMemory(Buffer.from('not a body')), false);
  });

  it('a body that ends short of its Content-Length: 400 saying how many bytes came', async () => {
    const { error } = await read({ 'content-length': '10' }, [Buffer.from('abcde')]);
    assert.ok(error instanceof ServeError);
    assert.equal(error.status, 400);
    assert.equal(error.message, 'request body has only 5 bytes but its Content-Length header says 10');
  });

  it('a body that runs past its Content-Length: 400', async () => {
    const { error } = await read({ 'content-length': '3' }, [Buffer.from('ab'), Buffer.from('cd')]);
    assert.ok(error instanceof ServeError);
    assert.equal(error.message, 'request body has more than the 3 bytes but its Content-Length header says 3');
  });

  it('an announced length over the limit is refused before reading, as fastify refuses it (413)', async () => {
    const { error } = await read({ 'content-length': '1001' }, []);
    assert.equal((error as { code?: string }).code, 'FST_ERR_CTP_BODY_TOO_LARGE');
    assert.equal(error!.statusCode, 413);
  });

  it('a body of unknown length passing the limit is refused (413); within it, joined', async () => {
    const over = await read({}, [Buffer.alloc(600), Buffer.alloc(600)]);
    assert.equal((over.error as { code?: string }).code, 'FST_ERR_CTP_BODY_TOO_LARGE');
    const within = await read({}, [Buffer.from('x'), Buffer.from('yz')]);
    assert.equal(within.body!.toString(), 'xyz');
  });

  it('a decoded body (Content-Encoding) is read by its own length, and checked against the wire length', async () => {
    const decoded = await read({ 'content-length': '4' }, [Buffer.from('decoded body')], { decoded: true });
    // The wire length is what the decoder counts (receivedEncodedLength); without one, the decoded length.
    assert.ok(decoded.error instanceof ServeError);
    assert.equal(decoded.error.message, 'request body has 12 bytes but its Content-Length header says 4');
  });

  it('a stream error (the client went away) reaches the error handler as a client error', async () => {
    const reset: Error & { code: string; statusCode?: number } = Object.assign(new Error('aborted'), {
      code: 'ECONNRESET',
    });
    const { error } = await read({ 'content-length': '10' }, [Buffer.from('abc')], { fail: reset });
    assert.equal(error, reset);
    assert.equal(error.statusCode, 400);
  });
});

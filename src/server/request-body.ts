/**
 * The request body as one Buffer, read without a long copy at the end. fastify's own reader
 * (`parseAs: 'buffer'`) keeps the chunks and joins them once the body is complete: for a 30 MB binary
 * request that join is one 30 MB copy (and 30 MB of fresh pages) in one stretch of the main thread,
 * during which every other request waits. When the body's length is known (Content-Length, no
 * Content-Encoding), this reader allocates it once and copies each chunk in as it arrives, so the
 * copying is spread over the arrival and the body is ready the moment its last chunk is in. Bodies of
 * unknown length (chunked, or decoded from gzip/deflate) are kept as chunks and joined, as fastify does.
 *
 * A body of known length is also placed so that the byte at `alignedOffset` (where binary tensors
 * start, after the binary extension's JSON header) sits at a multiple of 8 in its memory: the tensors
 * are then typed-array views into the body, not copies (a JSON header of odd length used to leave a
 * 30 MB FP32 input to be copied into an aligned array on the main thread). The few bytes of padding
 * before the body belong to it alone, so the body still owns its memory (ownsItsMemory) and its
 * tensors move to the worker with it, by transfer.
 *
 * Bodies of known length from 4 KiB to 4 MiB are read into memory from the process's BufferPool
 * (src/runtime/buffer-pool.ts), larger than the body (a power of two), which the infer route gives
 * back once its request has settled: a stream of small requests then allocates no body memory.
 *
 * Either way the body limit holds (an announced length over it is refused before anything is
 * allocated; a chunked or decoded body is refused the moment it passes it), a body that ends short of
 * its Content-Length is a 400 that says so, and the stream's errors (the client going away) reach the
 * error handler as they did.
 */
import type { FastifyRequest } from 'fastify';
import { errorCodes } from 'fastify';
import type { Readable } from 'node:stream';
import { invalidArgument, ServeError } from '../protocol/errors.js';
import { bufferPool } from '../runtime/buffer-pool.js';

type Done = (error: Error | null, body?: Buffer) => void;

/** A decoded body (src/server/request-encoding.ts) counts the bytes that came on the wire here. */
type BodyStream = Readable & { receivedEncodedLength?: number };

/** ArrayBuffers that hold one body alone, behind a few bytes of padding or with room after it (see ownsItsMemory). */
const loneBodies = new WeakSet<ArrayBufferLike>();

/**
 * Whether `body` is all that its memory holds (nothing else shares its ArrayBuffer, unlike a slice of
 * Buffer's pool), so that it may be handed to a worker by transfer.
 */
export function ownsItsMemory(body: Buffer): boolean {
  return (body.byteOffset === 0 && body.byteLength === body.buffer.byteLength) || loneBodies.has(body.buffer);
}

/** Where binary data should start: 8-byte alignment suits every datatype. */
const ALIGNMENT = 8;

/**
 * Reads the request body into one Buffer, at most `limit` bytes; a fastify content-type parser body.
 * `alignedOffset`: the offset in the body that should land on a multiple of 8 in memory.
 */
export function readRequestBody(
  request: FastifyRequest,
  payload: BodyStream,
  limit: number,
  done: Done,
  alignedOffset = 0,
): void {
  const declared = Number(request.headers['content-length']);
  const knownLength = request.headers['content-length'] !== undefined && Number.isSafeInteger(declared);
  if (knownLength && declared > limit) {
    done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    return;
  }
  // Content-Length counts the bytes on the wire: only an undecoded body fills exactly that many.
  if (knownLength && payload === request.raw) readIntoOneBuffer(payload, declared, alignedOffset, done);
  else readChunks(payload, limit, knownLength ? declared : undefined, done);
}

/** A body whose length is known: one allocation, each chunk copied in as it arrives. */
function readIntoOneBuffer(payload: BodyStream, length: number, alignedOffset: number, done: Done): void {
  const padding =
    alignedOffset > 0 && alignedOffset < length ? (ALIGNMENT - (alignedOffset % ALIGNMENT)) % ALIGNMENT : 0;
  let body: Buffer;
  const pooled = bufferPool.take(padding + length);
  if (pooled !== undefined) {
    // A body alone in its memory, as a padded one: its tensors may take that memory to a worker.
    loneBodies.add(pooled);
    body = Buffer.from(pooled, padding, length);
  } else if (padding === 0) {
    body = Buffer.allocUnsafe(length);
  } else {
    const memory = Buffer.allocUnsafeSlow(padding + length);
    loneBodies.add(memory.buffer);
    body = memory.subarray(padding);
  }
  let received = 0;
  consume(payload, done, {
    chunk(bytes) {
      if (received + bytes.length > length) return lengthMismatch(`more than the ${length} bytes`, length);
      bytes.copy(body, received);
      received += bytes.length;
      return undefined;
    },
    end: () => (received === length ? body : lengthMismatch(`only ${received} bytes`, length)),
  });
}

/** A body of unknown length (or decoded from Content-Encoding): chunks kept, joined once at the end. */
function readChunks(payload: BodyStream, limit: number, declared: number | undefined, done: Done): void {
  const chunks: Buffer[] = [];
  let received = 0;
  consume(payload, done, {
    chunk(bytes) {
      received += bytes.length;
      if (received > limit || (payload.receivedEncodedLength ?? 0) > limit) {
        return new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE();
      }
      chunks.push(bytes);
      return undefined;
    },
    end() {
      const onWire = payload.receivedEncodedLength ?? received;
      if (declared !== undefined && onWire !== declared) return lengthMismatch(`${onWire} bytes`, declared);
      // Always a copy: a chunk may be a view into memory its stream reuses.
      return Buffer.concat(chunks, received);
    },
  });
}

/**
 * Feeds `payload`'s chunks to `reader.chunk` (an Error stops the reading) and answers `done` once:
 * with what `reader.end` gives, or the first error (the stream's own ones as client errors).
 */
function consume(
  payload: BodyStream,
  done: Done,
  reader: { chunk: (bytes: Buffer) => Error | undefined; end: () => Buffer | Error },
): void {
  const finish = (outcome: Buffer | Error) => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onError);
    if (outcome instanceof Error) done(outcome);
    else done(null, outcome);
  };
  // A stream from a preParsing hook may emit strings.
  const onData = (chunk: Buffer | string) => {
    const error = reader.chunk(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (error !== undefined) finish(error);
  };
  const onEnd = () => finish(reader.end());
  const onError = (error: Error) => finish(clientError(error));
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onError);
  payload.resume();
}

function lengthMismatch(what: string, declared: number): Error {
  return invalidArgument(`request body has ${what} but its Content-Length header says ${declared}`);
}

/** A stream error without a status is the client's doing (fastify answers those 400 too). */
function clientError(error: Error & { statusCode?: number }): Error {
  if (error instanceof ServeError) return error;
  if (!(typeof error.statusCode === 'number' && error.statusCode >= 400)) error.statusCode = 400;
  return error;
}

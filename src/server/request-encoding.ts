/**
 * Request bodies sent with `Content-Encoding: gzip` or `deflate` (tritonclient compresses on
 * request), decoded as a stream before the body parser reads them. The body limit applies to the
 * decoded bytes: the decoder is stopped and destroyed the moment its output passes the limit, so a
 * compression bomb never inflates further. Any other encoding is refused with 415.
 */
import type { FastifyInstance } from 'fastify';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { invalidArgument, payloadTooLarge, unsupportedMediaType } from '../protocol/errors.js';

const DECODERS: Readonly<Record<string, () => Transform>> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
};

/** The stream fastify's body reader takes from preParsing: it reports the bytes that came on the wire. */
type DecodedBody = Transform & { receivedEncodedLength: number };

/** A preParsing hook on `app`'s scope that decodes compressed request bodies within `bodyLimit` decoded bytes. */
export function decodeRequestBodies(app: FastifyInstance, bodyLimit: number): void {
  // Synchronous (a `done` callback, no promise): it runs on every request with a body.
  app.addHook('preParsing', (request, _reply, payload, done) => {
    const header = request.headers['content-encoding'];
    const encoding = header?.trim().toLowerCase();
    if (encoding === undefined || encoding === '' || encoding === 'identity') {
      done(null, payload);
      return;
    }
    const decoder = Object.hasOwn(DECODERS, encoding) ? DECODERS[encoding] : undefined;
    if (decoder === undefined) {
      done(
        unsupportedMediaType(
          `Content-Encoding ${JSON.stringify(header)} is not supported; send the body as it is, or with gzip or deflate`,
        ),
      );
      return;
    }
    done(null, decodedBody(payload, decoder(), encoding, bodyLimit));
  });
}

function decodedBody(wire: Readable, decoder: Transform, encoding: string, limit: number): DecodedBody {
  let decodedBytes = 0;
  const bounded = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      decodedBytes += chunk.length;
      if (decodedBytes > limit) {
        callback(
          payloadTooLarge(
            `request body decodes (Content-Encoding: ${encoding}) to more than the limit of ${limit} bytes ` +
              `(${(limit / 1048576).toFixed(1)} MiB); raise it with --max-body-size`,
          ),
        );
        return;
      }
      callback(null, chunk);
    },
  }) as DecodedBody;
  bounded.receivedEncodedLength = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      bounded.receivedEncodedLength += chunk.length;
      callback(null, chunk);
    },
  });
  // Registered before pipeline() so that the body reader sees this error, not zlib's bare one.
  decoder.once('error', (error) =>
    bounded.destroy(
      invalidArgument(`request body is not valid ${encoding} data (Content-Encoding: ${encoding}): ${error.message}`),
    ),
  );
  // pipeline destroys every stage on the first error (the limit, bad data, the client going away).
  pipeline(wire, counted, decoder, bounded, () => {});
  return bounded;
}

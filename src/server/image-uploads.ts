import { Busboy, type BusboyFileStream, type BusboyInstance } from '@fastify/busboy';
import type { Upload } from '../processing/predict.js';
import { invalidArgument, payloadTooLarge, unsupportedMediaType } from '../protocol/errors.js';

/** Files one multipart request may carry: they all go through the model as one batch. */
export const MAX_FILES_PER_REQUEST = 32;
/** Non-file fields one multipart request may carry: /predict reads none, so a few are tolerated, not thousands. */
export const MAX_FIELDS_PER_REQUEST = 16;
/** Parts of any kind (files, fields) in one multipart request. */
export const MAX_PARTS_PER_REQUEST = MAX_FILES_PER_REQUEST + MAX_FIELDS_PER_REQUEST;
/** Header lines of one part (Content-Disposition, Content-Type, a few more). */
const MAX_PART_HEADERS = 16;
// The body is fed to the parser in slices, so that a limit hit early stops the work early.
const FEED_BYTES = 64 * 1024;

/**
 * The images of a /predict body: the body itself for `image/*` (or application/octet-stream), every
 * file part of `multipart/form-data`. Whether the bytes really are an image is for the decoder to say.
 */
export async function uploadsOf(body: Buffer, contentType: string | undefined): Promise<Upload[]> {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'multipart/form-data') return multipartFiles(body, contentType!);
  if (type.startsWith('image/') || type === 'application/octet-stream') {
    if (body.length === 0) throw invalidArgument('request body is empty; expected an image');
    return [{ name: 'request body', bytes: body }];
  }
  throw unsupportedMediaType(
    `Content-Type ${type === '' ? '(none)' : type} is not an image; send image/* (JPEG, PNG, WebP, GIF, TIFF, AVIF) or multipart/form-data with image files`,
  );
}

/**
 * The file parts of a multipart body. Every stream busboy makes has its 'error' handled: a truncated
 * or malformed body is a 400 that says why, never an unhandled 'error' event. Caps on files, fields
 * and parts are checked as the parts are parsed, and parsing stops at the first one hit.
 */
function multipartFiles(body: Buffer, contentType: string): Promise<Upload[]> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error: Error | undefined, uploads?: Upload[]) => {
      if (settled) return;
      settled = true;
      if (error === undefined) resolve(uploads!);
      else reject(error);
    };
    const unreadable = (error: unknown) =>
      settle(invalidArgument(`multipart/form-data body cannot be read: ${(error as Error).message}`));
    const tooMany = (what: string, limit: number) =>
      settle(payloadTooLarge(`more than ${limit} ${what} in one multipart request; send at most ${limit}`));

    let parser: BusboyInstance;
    try {
      parser = new Busboy({
        headers: { 'content-type': contentType },
        limits: {
          files: MAX_FILES_PER_REQUEST,
          fields: MAX_FIELDS_PER_REQUEST,
          parts: MAX_PARTS_PER_REQUEST,
          headerPairs: MAX_PART_HEADERS,
        },
      });
    } catch (error) {
      unreadable(error);
      return;
    }
    const files: Array<Promise<Upload | undefined>> = [];
    parser.on('file', (field: string, stream: BusboyFileStream, filename: string) => {
      const chunks: Buffer[] = [];
      files.push(
        new Promise((done) => {
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => done({ name: `file ${filename || field}`, bytes: Buffer.concat(chunks) }));
          // "Part terminated early": a body cut inside a file part.
          stream.on('error', (error) => {
            unreadable(error);
            done(undefined);
          });
        }),
      );
    });
    parser.on('filesLimit', () => tooMany('files', MAX_FILES_PER_REQUEST));
    parser.on('fieldsLimit', () => tooMany('non-file fields', MAX_FIELDS_PER_REQUEST));
    parser.on('partsLimit', () => tooMany('parts', MAX_PARTS_PER_REQUEST));
    parser.on('error', unreadable);
    parser.on('finish', () => {
      void Promise.all(files).then((uploads) => {
        if (uploads.length === 0)
          settle(invalidArgument('multipart/form-data body has no file parts; expected one or more image files'));
        else settle(undefined, uploads as Upload[]);
      });
    });
    try {
      // Busboy parses synchronously inside write(), so a limit's event has settled the promise before
      // the next slice; the rest of the body is never parsed.
      for (let offset = 0; offset < body.length && !settled; offset += FEED_BYTES) {
        parser.write(body.subarray(offset, offset + FEED_BYTES));
      }
      if (!settled) parser.end();
    } catch (error) {
      unreadable(error);
    }
  });
}

import { Busboy } from '@fastify/busboy';
import type { Upload } from '../processing/predict.js';
import { invalidArgument, payloadTooLarge, unsupportedMediaType } from '../protocol/errors.js';

/** Files one multipart request may carry: they all go through the model as one batch. */
export const MAX_FILES_PER_REQUEST = 32;

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

function multipartFiles(body: Buffer, contentType: string): Promise<Upload[]> {
  return new Promise((resolve, reject) => {
    const fail = (message: string) => reject(invalidArgument(`multipart/form-data body cannot be read: ${message}`));
    let parser;
    try {
      parser = new Busboy({ headers: { 'content-type': contentType }, limits: { files: MAX_FILES_PER_REQUEST } });
    } catch (error) {
      fail((error as Error).message);
      return;
    }
    const files: Array<Promise<Upload>> = [];
    let tooMany = false;
    parser.on('file', (field, stream, filename) => {
      const chunks: Buffer[] = [];
      files.push(
        new Promise((done) => {
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => done({ name: `file ${filename || field}`, bytes: Buffer.concat(chunks) }));
        }),
      );
    });
    parser.on('filesLimit', () => {
      tooMany = true;
    });
    parser.on('error', (error) => fail((error as Error).message));
    parser.on('finish', () => {
      void Promise.all(files).then((uploads) => {
        if (tooMany)
          reject(
            payloadTooLarge(
              `more than ${MAX_FILES_PER_REQUEST} files in one request; send at most ${MAX_FILES_PER_REQUEST}`,
            ),
          );
        else if (uploads.length === 0)
          reject(invalidArgument('multipart/form-data body has no file parts; expected one or more image files'));
        else resolve(uploads);
      });
    });
    parser.end(body);
  });
}

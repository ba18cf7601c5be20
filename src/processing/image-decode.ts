import sharp from 'sharp';
import { invalidArgument, payloadTooLarge, unsupportedMediaType } from '../protocol/errors.js';

/** An upright 8-bit sRGB image, 3 channels interleaved (RGBRGB…), row by row. */
export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
}

/** Default --max-image-pixels: a 48-megapixel phone photo passes; a decompression bomb does not. */
export const DEFAULT_MAX_IMAGE_PIXELS = 64_000_000;

/** sharp's format names for what /predict accepts (heif covers AVIF). SVG is left out: it is a program, not a photo. */
const ACCEPTED_FORMATS = new Map([
  ['jpeg', 'JPEG'],
  ['png', 'PNG'],
  ['webp', 'WebP'],
  ['gif', 'GIF'],
  ['tiff', 'TIFF'],
  ['heif', 'AVIF/HEIF'],
]);
const ACCEPTED_LIST = [...ACCEPTED_FORMATS.values()].join(', ');

/**
 * Decodes an uploaded image: the header is read first, so a format we do not take (415) or a size
 * over the pixel limit (413) is refused before any pixel is decoded; then the first frame is decoded,
 * turned upright by its EXIF orientation, flattened onto white if it has transparency, as sRGB.
 * `what` names the image in messages ("request body", "file scan.png").
 */
export async function decodeImage(bytes: Buffer, what: string, maxPixels: number): Promise<RgbImage> {
  let metadata: sharp.Metadata;
  try {
    // No pixel limit here: only the header is read, and the limit is ours to report below.
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    const message = (error as Error).message;
    // libvips tells a format it does not know from a known format whose header is damaged.
    if (/unsupported image format/.test(message)) {
      throw unsupportedMediaType(`${what} is not an image (expected ${ACCEPTED_LIST}): ${message}`);
    }
    throw invalidArgument(`${what} is an image whose header cannot be read (corrupt or truncated): ${message}`);
  }
  const format = ACCEPTED_FORMATS.get(metadata.format);
  if (format === undefined) {
    throw unsupportedMediaType(
      `${what} is ${metadata.format.toUpperCase()}, which /predict does not take (expected ${ACCEPTED_LIST})`,
    );
  }
  // pageHeight is one frame of an animated image; only the first frame is decoded.
  const height = metadata.pageHeight ?? metadata.height;
  const pixels = metadata.width * height;
  if (pixels > maxPixels) {
    throw payloadTooLarge(
      `${what} is ${metadata.width}×${height} = ${pixels} pixels, over the limit of ${maxPixels}; scale it down or raise --max-image-pixels`,
    );
  }
  try {
    // limitInputPixels again, in case the decoder disagrees with the header.
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels instead of 3`);
    return { data, width: info.width, height: info.height };
  } catch (error) {
    throw invalidArgument(
      `${what} is a ${format} image that cannot be decoded (corrupt or truncated): ${(error as Error).message}`,
    );
  }
}

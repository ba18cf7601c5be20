/**
 * Photos of text rendered from a description, with their ground truth: pages, receipts, signs and
 * single words, then tilted, put in perspective, blurred, lit unevenly, turned on their side and
 * saved as JPEG. Used by the OCR tests and by bench/ocr-set/generate.ts, which writes the photo set
 * the bench reads. The truth is the rendered text, one entry per printed row, in reading order.
 */
import sharp from 'sharp';
import { homography, warp } from '../../src/processing/text-crops.js';

export interface PrintedRow {
  /** Left-aligned at x. */
  text: string;
  /** Optional right-aligned text on the same row (a price on a receipt), ending at the page's right margin. */
  right?: string;
  x: number;
  /** Baseline. */
  y: number;
  size: number;
  /** Column: rows of column 1 are read after every row of column 0. */
  column?: number;
  /** Printed turned 180° about its own centre. */
  upsideDown?: boolean;
}

export interface PhotoSpec {
  name: string;
  width: number;
  height: number;
  rows: PrintedRow[];
  font?: 'DejaVu Sans' | 'DejaVu Serif' | 'DejaVu Sans Mono';
  bold?: boolean;
  ink?: string;
  /** Paper colour, or 'texture' for a noisy coloured board (signs). */
  paper?: string | 'texture';
  /** Degrees, clockwise. */
  tilt?: number;
  /** The top edge this share narrower than the bottom (a photo taken from below). */
  perspective?: number;
  /** Light falling off from one corner to this share of its brightness. */
  unevenLight?: number;
  blur?: number;
  /** The page photographed turned this far clockwise. */
  turn?: 0 | 90 | 180 | 270;
  jpegQuality?: number;
}

export interface RenderedPhoto {
  jpeg: Buffer;
  /** One entry per printed row, in reading order ("text right" where a row has a right part). */
  truth: string[];
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The text as rendered, row by row, in reading order (columns one after the other). */
export function truthOf(spec: PhotoSpec): string[] {
  return [...spec.rows]
    .sort((a, b) => (a.column ?? 0) - (b.column ?? 0) || a.y - b.y || a.x - b.x)
    .map((row) => (row.right === undefined ? row.text : `${row.text} ${row.right}`));
}

export async function renderPhoto(spec: PhotoSpec): Promise<RenderedPhoto> {
  const { width, height } = spec;
  const font = spec.font ?? 'DejaVu Sans';
  const ink = spec.ink ?? '#1a1a1a';
  const weight = spec.bold === true ? ' font-weight="bold"' : '';
  const text = spec.rows
    .map((row) => {
      const turn = row.upsideDown
        ? ` transform="rotate(180 ${row.x + row.text.length * row.size * 0.3} ${row.y - row.size * 0.35})"`
        : '';
      const left = `<text x="${row.x}" y="${row.y}" font-family="${font}" font-size="${row.size}" fill="${ink}"${weight}${turn}>${escapeXml(row.text)}</text>`;
      const right =
        row.right === undefined
          ? ''
          : `<text x="${width - row.x}" y="${row.y}" text-anchor="end" font-family="${font}" font-size="${row.size}" fill="${ink}"${weight}>${escapeXml(row.right)}</text>`;
      return left + right;
    })
    .join('');
  const paper = spec.paper ?? '#f4f1ea';
  const textured = paper === 'texture';
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      (textured ? '' : `<rect width="100%" height="100%" fill="${paper}"/>`) +
      `${text}</svg>`,
  );
  let page: Buffer;
  if (textured) {
    // A board: a dark colour with coarse noise under the letters.
    const board = await sharp({
      create: { width, height, channels: 3, background: '#000000', noise: { type: 'gaussian', mean: 70, sigma: 40 } },
    })
      .blur(1.2)
      .tint('#1f5a3a')
      .png()
      .toBuffer();
    page = await sharp(board)
      .composite([{ input: svg }])
      .removeAlpha()
      .png()
      .toBuffer();
  } else {
    page = await sharp(svg).removeAlpha().png().toBuffer();
  }

  if (spec.unevenLight !== undefined) {
    const shade = Math.round(255 * spec.unevenLight);
    const gradient = Buffer.from(
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">` +
        `<stop offset="0" stop-color="rgb(255,255,255)"/><stop offset="1" stop-color="rgb(${shade},${shade},${shade})"/></linearGradient></defs>` +
        `<rect width="100%" height="100%" fill="url(#g)"/></svg>`,
    );
    page = await sharp(page)
      .composite([{ input: gradient, blend: 'multiply' }])
      .removeAlpha()
      .png()
      .toBuffer();
  }

  // The page on a desk: a margin around it, so tilt and perspective show its edges.
  const margin = Math.round(0.06 * Math.max(width, height));
  const desk = { r: 96, g: 88, b: 80 };
  let photo = sharp(page).extend({ top: margin, bottom: margin, left: margin, right: margin, background: desk });
  if (spec.perspective !== undefined) {
    const { data, info } = await photo.raw().toBuffer({ resolveWithObject: true });
    const w = info.width;
    const h = info.height;
    const inset = (spec.perspective * w) / 2;
    // Output corners sample a wider source at the top: the page's top edge looks shorter.
    const toSource = homography(
      [
        [0, 0],
        [w, 0],
        [w, h],
        [0, h],
      ],
      [
        [-inset, 0],
        [w + inset, 0],
        [w, h],
        [0, h],
      ],
    );
    const warped = warp({ data, width: w, height: h }, toSource, w, h);
    photo = sharp(warped.data, { raw: { width: w, height: h, channels: 3 } });
  }
  if (spec.tilt !== undefined && spec.tilt !== 0) {
    photo = sharp(await photo.png().toBuffer()).rotate(spec.tilt, { background: desk });
  }
  if (spec.turn !== undefined && spec.turn !== 0) photo = sharp(await photo.png().toBuffer()).rotate(spec.turn);
  if (spec.blur !== undefined) photo = sharp(await photo.png().toBuffer()).blur(spec.blur);
  const jpeg = await photo.jpeg({ quality: spec.jpegQuality ?? 85 }).toBuffer();
  return { jpeg, truth: truthOf(spec) };
}

const WORDS = (
  'the of and to in is was for on with as by at from that this which be are were have has had not but ' +
  'or an they their there all one two three four five six seven eight nine ten first last page river ' +
  'winter morning station letter garden market window harbour village evening number paper street ' +
  'north south east west light water stone silver yellow orange purple copper metal engine mountain ' +
  'kitchen bottle button pocket ticket summer autumn spring island forest valley bridge castle ' +
  'Monday Friday London Paris Berlin Oslo Lisbon Madrid Vienna Prague Dublin Milan Geneva'
).split(' ');

/** A deterministic pseudo-random source (a linear congruential generator), so the set never changes. */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** A line of prose-like words, about `chars` characters long, sometimes with a number in it. */
export function proseLine(random: () => number, chars: number): string {
  const words: string[] = [];
  let length = 0;
  while (length < chars) {
    const word =
      random() < 0.08 ? String(Math.floor(random() * 9000) + 100) : WORDS[Math.floor(random() * WORDS.length)];
    words.push(word);
    length += word.length + 1;
  }
  const line = words.join(' ');
  return line[0].toUpperCase() + line.slice(1);
}

/** A page of `lines` rows of prose at `size` pixels, filling `width` (a book page or dense print). */
export function prosePage(
  name: string,
  options: { width: number; height: number; lines: number; size: number; seed: number; top?: number },
): PhotoSpec {
  const random = seeded(options.seed);
  const top = options.top ?? Math.round(options.size * 3);
  const leading = (options.height - 2 * top) / options.lines;
  const chars = Math.floor((options.width - 2 * 50) / (options.size * 0.56));
  const rows = Array.from({ length: options.lines }, (_, i) => ({
    text: proseLine(random, chars - 8 - Math.floor(random() * 6)),
    x: 50,
    y: Math.round(top + leading * (i + 0.8)),
    size: options.size,
  }));
  return { name, width: options.width, height: options.height, rows };
}

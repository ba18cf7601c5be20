/**
 * Renders the calibration images that ship with the default OCR models (models/<model>/calibration/),
 * from which `precision: int8` builds their int8 variants: text-line crops for the recognizer and
 * the orientation classifier (some of them upside down for the latter), and page photos for the
 * detector. Other texts and seeds than the test photos and bench/ocr-set, so that the int8 models
 * are never calibrated on what measures them. Deterministic text; the bytes depend on the installed
 * sharp/libvips and fonts, and any change rebuilds the cached int8 variants (the cache key hashes them).
 *
 *   node --import tsx scripts/generate-calibration.ts
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { proseLine, prosePage, renderPhoto, seeded, type PhotoSpec } from '../test/helpers/ocr-photos.js';

const FONTS = ['DejaVu Sans', 'DejaVu Serif', 'DejaVu Sans Mono'] as const;
const PAPERS = ['#ffffff', '#f4f1ea', '#e9eef5', '#fbfaf7', '#d8d2c4'];
const INKS = ['#111111', '#1a1a1a', '#2b2b6b', '#3a3a3a'];

const LINES = [
  'Calibration sample for the int8 recognizer',
  'Invoice 2025-0931',
  'Amount due 1,284.60 NOK',
  'Delivery address: 4 Quay Road',
  'Open daily 08:00-22:00',
  'FRAGILE - HANDLE WITH CARE',
  'Tel. +47 22 33 44 55',
  'Best before 12/2027',
  'Platform 3 for northbound trains',
  'Batch no. QX-4471/B',
  'Ingredients: water, salt, yeast',
  'www.example.org/help',
];

interface LineStyle {
  font: (typeof FONTS)[number];
  size: number;
  paper: string;
  ink: string;
  bold: boolean;
  blur?: number;
  quality: number;
}

/** A text line as the ocr pipeline crops it: the line with a margin of about a third of its height around the letters. */
async function renderLine(text: string, style: LineStyle): Promise<Buffer> {
  // Drawn on a wide canvas, trimmed to the letters, then given the margin the pipeline's crops have.
  const width = Math.ceil(text.length * style.size * 0.8) + style.size;
  const height = Math.round(style.size * 1.6);
  const escaped = text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="100%" height="100%" fill="${style.paper}"/>` +
    `<text x="${Math.round(style.size / 2)}" y="${Math.round(style.size * 1.15)}" font-family="${style.font}" font-size="${style.size}" ` +
    `fill="${style.ink}"${style.bold ? ' font-weight="bold"' : ''}>${escaped}</text></svg>`;
  const margin = Math.round(style.size * 0.25);
  const trimmed = await sharp(Buffer.from(svg)).removeAlpha().trim({ threshold: 40 }).png().toBuffer();
  const padded = await sharp(trimmed)
    .extend({ top: margin, bottom: margin, left: margin, right: margin, background: style.paper })
    .png()
    .toBuffer();
  let image = sharp(padded);
  if (style.blur !== undefined) image = sharp(await image.png().toBuffer()).blur(style.blur);
  return image.jpeg({ quality: style.quality }).toBuffer();
}

function lineStyle(random: () => number): LineStyle {
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  return {
    font: pick(FONTS),
    size: 18 + Math.floor(random() * 24),
    paper: pick(PAPERS),
    ink: pick(INKS),
    bold: random() < 0.25,
    ...(random() < 0.4 ? { blur: 0.5 + random() } : {}),
    quality: 55 + Math.floor(random() * 40),
  };
}

async function writeFresh(dir: string, files: Array<[string, Buffer]>): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of files) await writeFile(path.join(dir, name), bytes);
  const kb = files.reduce((sum, [, bytes]) => sum + bytes.length, 0) / 1024;
  console.log(`${dir}: ${files.length} images, ${kb.toFixed(0)} KB`);
}

const random = seeded(2025);
const lines: Array<[string, Buffer]> = [];
const texts = [...LINES, ...Array.from({ length: 12 }, (_, i) => proseLine(random, 12 + ((i * 7) % 40)))];
for (const [i, text] of texts.entries()) {
  lines.push([`line-${String(i).padStart(2, '0')}.jpg`, await renderLine(text, lineStyle(random))]);
}
await writeFresh('models/text-recognizer/calibration', lines);

// The classifier sees lines both ways up: every other one turned 180°.
const orientation: Array<[string, Buffer]> = [];
for (const [i, [name, bytes]] of lines.slice(0, 16).entries()) {
  orientation.push([name, i % 2 === 0 ? bytes : await sharp(bytes).rotate(180).jpeg({ quality: 85 }).toBuffer()]);
}
await writeFresh('models/text-orientation/calibration', orientation);

const pages: PhotoSpec[] = [
  { ...prosePage('page', { width: 760, height: 980, lines: 24, size: 20, seed: 404 }), font: 'DejaVu Serif', tilt: 3 },
  {
    ...prosePage('notice', { width: 820, height: 620, lines: 9, size: 30, seed: 505 }),
    paper: '#e9eef5',
    perspective: 0.12,
    unevenLight: 0.65,
    blur: 0.7,
  },
  {
    name: 'label',
    width: 600,
    height: 420,
    rows: LINES.slice(1, 7).map((text, i) => ({ text, x: 40, y: 70 + i * 58, size: 28 })),
    paper: 'texture',
    ink: '#f2f2f2',
    bold: true,
    tilt: -8,
    jpegQuality: 70,
  },
];
const photos: Array<[string, Buffer]> = [];
for (const spec of pages)
  photos.push([`${spec.name}.jpg`, (await renderPhoto({ ...spec, jpegQuality: spec.jpegQuality ?? 75 })).jpeg]);
await writeFresh('models/text-detector/calibration', photos);

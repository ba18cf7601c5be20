/**
 * The photo set of bench/ocr-peers.ts (and of anyone measuring OCR accuracy: issue 19's int8 check
 * reads it too): what each photo shows and how it was taken. generate.ts renders it into this
 * folder; the truth of each photo is the text it was rendered from.
 */
import { prosePage, proseLine, seeded, type PhotoSpec, type PrintedRow } from '../../test/helpers/ocr-photos.js';

function receipt(): PhotoSpec {
  const random = seeded(7);
  const items = ['Coffee beans', 'Whole milk', 'Rye bread', 'Apples', 'Cheddar', 'Olive oil', 'Tomatoes', 'Rice'];
  const rows: PrintedRow[] = [
    { text: 'CORNER MARKET', x: 190, y: 70, size: 30 },
    { text: '12 Harbour Street, Oslo', x: 130, y: 110, size: 20 },
  ];
  let y = 170;
  for (let i = 0; i < 38; i++) {
    const price = (1 + random() * 40).toFixed(2);
    rows.push({ text: `${items[i % items.length]} ${i + 1}`, right: price, x: 40, y, size: 20 });
    y += 28;
  }
  rows.push({ text: 'TOTAL', right: '412.80', x: 40, y: y + 20, size: 26 });
  return {
    name: 'receipt',
    width: 640,
    height: y + 80,
    rows,
    font: 'DejaVu Sans Mono',
    paper: '#fbfaf7',
    unevenLight: 0.6,
    tilt: 4,
  };
}

function twoColumns(): PhotoSpec {
  const random = seeded(11);
  const rows: PrintedRow[] = [];
  for (const column of [0, 1]) {
    for (let i = 0; i < 18; i++) {
      rows.push({ text: proseLine(random, 34), x: column === 0 ? 50 : 640, y: 80 + i * 44, size: 22, column });
    }
  }
  return { name: 'two-columns', width: 1200, height: 900, rows, font: 'DejaVu Serif' };
}

function carelabel(): PhotoSpec {
  return {
    name: 'care-label',
    width: 460,
    height: 300,
    rows: [
      { text: 'MACHINE WASH 40', x: 40, y: 70, size: 30 },
      { text: 'DO NOT TUMBLE DRY', x: 40, y: 130, size: 30 },
      { text: 'DRY CLEAN ANY SOLVENT', x: 40, y: 190, size: 26 },
      { text: 'MAINTENANCE LOW', x: 40, y: 250, size: 26 },
    ],
    paper: '#e9eef5',
    tilt: 11,
    blur: 0.8,
    jpegQuality: 55,
  };
}

const page = (name: string, seed: number, extra: Partial<PhotoSpec>): PhotoSpec => ({
  ...prosePage(name, { width: 900, height: 1000, lines: 18, size: 24, seed }),
  ...extra,
});

export const PHOTO_SET: PhotoSpec[] = [
  { ...prosePage('book-page', { width: 1000, height: 1400, lines: 42, size: 20, seed: 1 }), font: 'DejaVu Serif' },
  { ...prosePage('dense-small-print', { width: 1100, height: 1500, lines: 64, size: 15, seed: 2 }), jpegQuality: 80 },
  receipt(),
  page('page-tilt-7', 3, { tilt: 7, blur: 0.7 }),
  page('page-tilt-minus-13', 4, { tilt: -13 }),
  page('page-perspective', 5, { perspective: 0.14, unevenLight: 0.5 }),
  page('page-sideways-90', 6, { turn: 90 }),
  page('page-upside-down', 8, { turn: 180, jpegQuality: 70 }),
  page('page-sideways-270', 9, { turn: 270, tilt: 3 }),
  twoColumns(),
  {
    name: 'sign-parking',
    width: 760,
    height: 360,
    rows: [
      { text: 'NO PARKING', x: 90, y: 150, size: 84 },
      { text: 'VEHICLES WILL BE TOWED', x: 70, y: 260, size: 44 },
    ],
    paper: 'texture',
    ink: '#ffffff',
    bold: true,
    tilt: 6,
    jpegQuality: 70,
  },
  {
    name: 'sign-joint',
    width: 720,
    height: 260,
    rows: [{ text: 'JOINT ENTRY', x: 60, y: 170, size: 96 }],
    paper: 'texture',
    ink: '#f5e04a',
    bold: true,
    tilt: -9,
    perspective: 0.1,
  },
  carelabel(),
  {
    name: 'word-maintenance',
    width: 330,
    height: 70,
    rows: [{ text: 'Maintenance', x: 14, y: 50, size: 40 }],
    paper: '#ffffff',
  },
  {
    name: 'line-invoice',
    width: 560,
    height: 64,
    rows: [{ text: 'Invoice 2026-0042 paid', x: 12, y: 44, size: 32 }],
    paper: '#ffffff',
    jpegQuality: 60,
  },
];

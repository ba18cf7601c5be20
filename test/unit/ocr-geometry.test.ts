/**
 * The geometry of the `ocr` pipeline, without models: recognizer batches, reading order, page turns,
 * straightened crops.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Point } from '../../src/processing/postprocess/db-text-detection.js';
import { looksSideways, readingCorners, readingOrder, uprightPoint } from '../../src/processing/reading-order.js';
import { planBatches } from '../../src/processing/recognizer-batches.js';
import { homography, project, rotateHalf, straightenedCrop } from '../../src/processing/text-crops.js';

/** A rectangle of width × height centred at (cx, cy), turned `degrees` clockwise, corners clockwise from its top-left. */
function rotatedBox(cx: number, cy: number, width: number, height: number, degrees: number): Point[] {
  const a = (degrees * Math.PI) / 180;
  const u: Point = [Math.cos(a), Math.sin(a)];
  const v: Point = [-Math.sin(a), Math.cos(a)];
  return [
    [-1, -1],
    [1, -1],
    [1, 1],
    [-1, 1],
  ].map(([su, sv]): Point => [
    cx + (su * width * u[0]) / 2 + (sv * height * v[0]) / 2,
    cy + (su * width * u[1]) / 2 + (sv * height * v[1]) / 2,
  ]);
}

describe('recognizer batches', () => {
  it('sorts crops by tensor width and cuts batches of the given size', () => {
    const widths = [480, 320, 1440, 320, 720];
    assert.deepEqual(planBatches(widths, 2), [[1, 3], [0, 4], [2]]);
    assert.deepEqual(planBatches(widths, 6), [[1, 3, 0, 4, 2]]);
    assert.deepEqual(planBatches([], 6), []);
  });

  it('closes a batch before its crops × padded width would pass maxColumns; a wider crop goes alone', () => {
    const widths = [320, 320, 320, 640, 640, 2400, 1000];
    // 3 × 320 fits 1300, a fourth at 640 would pad all to 2560; 2 × 640 fits; 1000 and 2400 alone.
    assert.deepEqual(planBatches(widths, 6, 1300), [[0, 1, 2], [3, 4], [6], [5]]);
    // The batch size caps too: the third 320 then shares a batch with a 640 (2 × 640 fits).
    assert.deepEqual(planBatches(widths, 2, 1300), [[0, 1], [2, 3], [4], [6], [5]]);
  });

  it('refuses a batch size that is not a positive integer, naming it', () => {
    assert.throws(() => planBatches([], 0), {
      name: 'RangeError',
      message: 'batchSize must be a positive integer, got 0',
    });
    assert.throws(() => planBatches([], 2.5), {
      name: 'RangeError',
      message: 'batchSize must be a positive integer, got 2.5',
    });
    assert.throws(() => planBatches([], 2, 0), { name: 'RangeError', message: 'maxColumns must be positive, got 0' });
  });
});

describe('reading order', () => {
  it('keeps tilted adjacent lines apart, each read left to right', () => {
    // Three lines tilted 8°, 40 px apart: each spans more height than the spacing, so testing every
    // box against the first box's straight bounds merged them into one row.
    const lines = [0, 1, 2].map((row) => rotatedBox(400, 100 + row * 40, 700, 30, 8));
    // Each line also has a short word to its right, on the same slope.
    const words = [0, 1, 2].map((row) => {
      const a = (8 * Math.PI) / 180;
      return rotatedBox(400 + 420 * Math.cos(a), 100 + row * 40 + 420 * Math.sin(a), 80, 30, 8);
    });
    const order = readingOrder([words[2], lines[1], words[0], lines[2], lines[0], words[1]]);
    // lines[0], words[0], lines[1], words[1], lines[2], words[2]
    assert.deepEqual(order, [4, 2, 1, 5, 3, 0]);
  });

  it('reads two columns of long lines one after the other', () => {
    const left = [0, 1, 2, 3].map((row) => rotatedBox(300, 100 + row * 50, 480, 30, 0));
    const right = [0, 1, 2, 3].map((row) => rotatedBox(900, 100 + row * 50, 480, 30, 0));
    const order = readingOrder([...right, ...left]);
    assert.deepEqual(order, [4, 5, 6, 7, 0, 1, 2, 3]);
  });

  it('reads a receipt row by row: short prices on the right are not a column', () => {
    const items = [0, 1, 2, 3].map((row) => rotatedBox(150, 100 + row * 40, 200, 28, 0));
    const prices = [0, 1, 2, 3].map((row) => rotatedBox(550, 100 + row * 40, 70, 28, 0));
    assert.deepEqual(readingOrder([...items, ...prices]), [0, 4, 1, 5, 2, 6, 3, 7]);
  });
});

describe('page turns', () => {
  it('maps a point to the upright page for each quarter turn', () => {
    // A 300 × 200 photo; the point near its top-right corner.
    assert.deepEqual(uprightPoint([290, 10], 0, 300, 200), [290, 10]);
    assert.deepEqual(uprightPoint([290, 10], 90, 300, 200), [190, 290]);
    assert.deepEqual(uprightPoint([290, 10], 180, 300, 200), [10, 190]);
    assert.deepEqual(uprightPoint([290, 10], 270, 300, 200), [10, 10]);
  });

  it('starts a box at the corner that is top-left when the page is read upright', () => {
    const box: Point[] = [
      [10, 10],
      [30, 10],
      [30, 110],
      [10, 110],
    ];
    // Upright, the box is tall; on a page turned 90° its bottom-left corner is its top-left.
    assert.deepEqual(readingCorners(box, 90, 300, 200)[0], [10, 110]);
    assert.deepEqual(readingCorners(box, 270, 300, 200)[0], [30, 10]);
    const wide: Point[] = [
      [10, 10],
      [110, 10],
      [110, 30],
      [10, 30],
    ];
    assert.deepEqual(readingCorners(wide, 0, 300, 200)[0], [10, 10]);
    assert.deepEqual(readingCorners(wide, 180, 300, 200)[0], [110, 30]);
  });

  it('calls a page sideways when most of its boxes stand up', () => {
    const standing = [0, 1, 2].map((i) => rotatedBox(100 + i * 40, 200, 30, 300, 4));
    const lying = [0, 1, 2].map((i) => rotatedBox(200, 100 + i * 40, 300, 30, -4));
    assert.equal(looksSideways(standing), true);
    assert.equal(looksSideways(lying), false);
    assert.equal(looksSideways([...lying, standing[0]]), false);
  });
});

describe('straightened crops', () => {
  it('finds the transform that takes four points onto four others', () => {
    const from: Point[] = [
      [0, 0],
      [100, 0],
      [100, 20],
      [0, 20],
    ];
    const to: Point[] = [
      [10, 5],
      [120, 15],
      [115, 40],
      [8, 28],
    ];
    const h = homography(from, to);
    from.forEach((point, i) => {
      const [x, y] = project(h, point[0], point[1]);
      assert.ok(Math.abs(x - to[i][0]) < 1e-6 && Math.abs(y - to[i][1]) < 1e-6, `${i}: ${x},${y}`);
    });
  });

  /** A white 200 × 120 image with a black bar from (40, 50) to (160, 70), tilted `degrees` about its centre. */
  function imageWithBar(degrees: number) {
    const width = 200;
    const height = 120;
    const data = Buffer.alloc(width * height * 3, 255);
    const a = (-degrees * Math.PI) / 180;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        // Un-rotate the pixel into the bar's frame.
        const dx = x + 0.5 - 100;
        const dy = y + 0.5 - 60;
        const bx = dx * Math.cos(a) - dy * Math.sin(a);
        const by = dx * Math.sin(a) + dy * Math.cos(a);
        if (Math.abs(bx) <= 60 && Math.abs(by) <= 10) data.fill(0, (y * width + x) * 3, (y * width + x) * 3 + 3);
      }
    }
    return { data, width, height };
  }

  it('cuts a tilted line out level: the bar fills the crop and nothing around it comes along', () => {
    const crop = straightenedCrop(imageWithBar(12), rotatedBox(100, 60, 120, 20, 12));
    assert.equal(crop.width, 120);
    assert.equal(crop.height, 20);
    let dark = 0;
    for (let i = 0; i < crop.data.length; i += 3) if (crop.data[i] < 128) dark += 1;
    // An axis-aligned cut of the same box would be ~40 % white corners.
    assert.ok(dark / (crop.width * crop.height) > 0.9, `dark share ${dark / (crop.width * crop.height)}`);
  });

  it('adds a margin above and below, and stretches the crop along the text by as much', () => {
    const crop = straightenedCrop(imageWithBar(12), rotatedBox(100, 60, 120, 20, 12), 1.2);
    assert.deepEqual([crop.width, crop.height], [144, 24]);
    // The bar fills the middle rows; the margin rows (2 px above and below) are white.
    const darkShare = (row: number) => {
      let dark = 0;
      for (let x = 10; x < crop.width - 10; x++) if (crop.data[(row * crop.width + x) * 3] < 128) dark += 1;
      return dark / (crop.width - 20);
    };
    assert.ok(darkShare(12) > 0.95, `middle row ${darkShare(12)}`);
    assert.ok(darkShare(0) < 0.05 && darkShare(23) < 0.05, `edge rows ${darkShare(0)} ${darkShare(23)}`);
  });

  it('turns a crop at least 1.5× taller than wide a quarter, to read left to right', () => {
    const crop = straightenedCrop(imageWithBar(0), [
      [90, 10],
      [110, 10],
      [110, 110],
      [90, 110],
    ]);
    assert.deepEqual([crop.width, crop.height], [100, 20]);
  });

  it('turns an image upside down', () => {
    const image = { data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), width: 2, height: 2 };
    assert.deepEqual([...rotateHalf(image).data], [10, 11, 12, 7, 8, 9, 4, 5, 6, 1, 2, 3]);
  });
});

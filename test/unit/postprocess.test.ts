import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ctcClasses, ctcGreedyDecode } from '../../src/processing/postprocess/ctc.js';
import {
  convexHull,
  detectTextBoxes,
  minAreaRect,
  DB_DEFAULTS,
} from '../../src/processing/postprocess/db-text-detection.js';
import { topK } from '../../src/processing/postprocess/top-k.js';
import type { Placement } from '../../src/processing/preprocess.js';

describe('top-k', () => {
  it('ranks probabilities as they are, with labels', () => {
    const rows = topK([0.1, 0.7, 0.2, 0.5, 0.25, 0.25], 2, 3, { k: 2, labels: ['cat', 'dog', 'fox'] });
    assert.deepEqual(rows, [
      [
        { label: 'dog', index: 1, score: 0.7 },
        { label: 'fox', index: 2, score: 0.2 },
      ],
      [
        { label: 'cat', index: 0, score: 0.5 },
        { label: 'dog', index: 1, score: 0.25 },
      ],
    ]);
  });

  it('applies softmax to logits, and names classes without a label by index', () => {
    const [row] = topK([0, Math.log(3)], 1, 2, { k: 5 });
    assert.deepEqual(
      row.map((r) => [r.label, Number(r.score.toFixed(6))]),
      [
        ['1', 0.75],
        ['0', 0.25],
      ],
    );
  });

  it('softmax can be forced on or off', () => {
    assert.equal(topK([0.5, 0.5], 1, 2, { k: 1, softmax: true })[0][0].score, 0.5);
    assert.equal(topK([3, 1], 1, 2, { k: 1, softmax: false })[0][0].score, 3);
  });
});

describe('CTC greedy decoding', () => {
  const classes = ctcClasses('a\nb\nc\n');

  it('builds blank + dictionary lines + space', () => {
    assert.deepEqual(classes, ['', 'a', 'b', 'c', ' ']);
    assert.deepEqual(ctcClasses('x\ny', { appendSpace: false, blankIndex: 2 }), ['x', 'y', '']);
  });

  it('merges repeats, drops blanks, keeps a letter repeated across a blank, averages confidence', () => {
    // a a → one a; the blank separates it from the next a; then b, space, c.
    const best = [1, 1, 0, 1, 2, 4, 3];
    const scores = [0.9, 0.8, 0.99, 0.7, 0.6, 0.5, 0.4];
    const probabilities = new Float32Array(best.length * classes.length);
    best.forEach((k, t) => {
      probabilities.fill((1 - scores[t]) / (classes.length - 1), t * classes.length, (t + 1) * classes.length);
      probabilities[t * classes.length + k] = scores[t];
    });
    const [decoded] = ctcGreedyDecode(probabilities, [1, best.length, classes.length], classes);
    assert.equal(decoded.text, 'aab c');
    // Kept: a (0.9, first of the pair), a (0.7), b (0.6), space (0.5), c (0.4).
    assert.ok(Math.abs(decoded.confidence - (0.9 + 0.7 + 0.6 + 0.5 + 0.4) / 5) < 1e-6);
  });

  it('stops a step early on softmax outputs and reads exactly what the full scan reads', () => {
    // 200 steps over 600 classes: peaked softmax rows (the blank, early, late and the last class
    // winning), flat rows, and near-ties, from a fixed seed.
    const count = 600;
    const many = ['', ...Array.from({ length: count - 1 }, (_, k) => String.fromCharCode(0x4e00 + k))];
    let seed = 13;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const steps = 200;
    const probabilities = new Float32Array(steps * count);
    for (let t = 0; t < steps; t++) {
      const logits = Array.from({ length: count }, () => random() * 2);
      const winner = [0, 3, count - 1, Math.floor(random() * count)][t % 4];
      logits[winner] += [12, 4, 0.01, 0][Math.floor(t / 4) % 4];
      const max = Math.max(...logits);
      const exps = logits.map((x) => Math.exp(x - max));
      const total = exps.reduce((a, b) => a + b, 0);
      exps.forEach((e, k) => (probabilities[t * count + k] = e / total));
    }
    const full = ctcGreedyDecode(probabilities, [1, steps, count], many);
    const early = ctcGreedyDecode(probabilities, [1, steps, count], many, 0, true);
    assert.deepEqual(early, full);
    assert.ok(full[0].text.length > 20, 'the rows decode to characters, not only blanks');
  });

  it('scans every class of outputs that are not a softmax (the default)', () => {
    // Logits: the first value is above 1 minus itself, yet the last class is the best.
    const logits = new Float32Array([3, 0, 0, 0, 5]);
    assert.equal(ctcGreedyDecode(logits, [1, 1, 5], classes)[0].text, ' ');
  });

  it('an all-blank line is empty with confidence 0', () => {
    const probabilities = new Float32Array(2 * 5);
    probabilities[0] = 1;
    probabilities[5] = 1;
    assert.deepEqual(ctcGreedyDecode(probabilities, [1, 2, 5], classes), [{ text: '', confidence: 0 }]);
  });
});

describe('DB text detection', () => {
  const placementOf = (width: number, height: number, scale = 1): Placement => ({
    width: width / scale,
    height: height / scale,
    scaleX: scale,
    scaleY: scale,
    offsetX: 0,
    offsetY: 0,
    region: { left: 0, top: 0, width, height },
  });

  /** A map with rectangles of a given probability. */
  function map(width: number, height: number, rects: Array<[number, number, number, number, number]>): Float32Array {
    const data = new Float32Array(width * height);
    for (const [x0, y0, x1, y1, p] of rects) {
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) data[y * width + x] = p;
    }
    return data;
  }

  it('finds each region, grows it by the unclip margin and scales it to the original image', () => {
    // Two text regions: 41×11 pixels (centres span 40×10) and 21×9; one faint region below box_threshold.
    const probabilities = map(100, 60, [
      [10, 5, 50, 15, 0.9],
      [60, 30, 80, 38, 0.8],
      [10, 45, 40, 55, 0.5],
    ]);
    const boxes = detectTextBoxes(probabilities, 100, placementOf(100, 60, 0.5));
    assert.equal(boxes.length, 2);
    // 40×10 with ratio 1.5: distance = 400 × 1.5 / 100 = 6 on every side; then ÷ 0.5 back to the original.
    assert.deepEqual(boxes[0].box, [
      [8, 0], // y −2 clamped to the image
      [112, 0],
      [112, 42],
      [8, 42],
    ]);
    assert.ok(Math.abs(boxes[0].score - 0.9) < 1e-6);
    // 20×8: distance = 160 × 1.5 / 56 ≈ 4.29.
    assert.deepEqual(boxes[1].box, [
      [111, 51],
      [169, 51],
      [169, 85],
      [111, 85],
    ]);
  });

  it('drops regions thinner than min_size and searches only the image part of a padded map', () => {
    const probabilities = map(60, 40, [
      [5, 5, 40, 6, 0.9], // 2 pixels high: shorter side 1 < 3
      [5, 20, 30, 30, 0.9], // inside the image
      [45, 20, 58, 30, 0.9], // in the padding to the right of a 40-wide image
    ]);
    const placement: Placement = { ...placementOf(40, 40), region: { left: 0, top: 0, width: 40, height: 40 } };
    const boxes = detectTextBoxes(probabilities, 60, placement);
    assert.equal(boxes.length, 1);
    // 25×10: distance = 250 × 1.5 / 70 ≈ 5.36; x clamped at 0 and at the image's right edge, 40.
    assert.deepEqual(boxes[0].box, [
      [0, 15],
      [35, 15],
      [35, 35],
      [0, 35],
    ]);
  });

  it('fits a rotated rectangle to a slanted region', () => {
    // A band along the diagonal: the hull is a slanted parallelogram, the rectangle lies along it.
    const points: Array<[number, number]> = [];
    for (let t = 0; t <= 40; t++) for (let w = 0; w < 6; w++) points.push([10 + t + w, 10 + t - w]);
    const rect = minAreaRect(convexHull(points))!;
    const angle = (Math.atan2(rect.u[1], rect.u[0]) * 180) / Math.PI;
    assert.ok(Math.abs(Math.abs(angle % 180) - 45) < 1, `angle ${angle}`);
    assert.ok(Math.abs(Math.max(rect.halfU, rect.halfV) * 2 - 40 * Math.SQRT2) < 1.5);
    assert.ok(Math.abs(Math.min(rect.halfU, rect.halfV) * 2 - 5 * Math.SQRT2) < 1.5);
  });

  it('uses PaddleOCR defaults', () => {
    assert.deepEqual(DB_DEFAULTS, {
      threshold: 0.3,
      boxThreshold: 0.6,
      unclipRatio: 1.5,
      maxCandidates: 1000,
      minSize: 3,
    });
  });
});

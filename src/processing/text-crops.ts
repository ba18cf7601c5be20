import type { RgbImage } from './image-decode.js';
import type { Point } from './postprocess/db-text-detection.js';

/**
 * Straightened text crops, as PaddleOCR's get_rotate_crop_image cuts them: the four corners of a
 * detected (possibly tilted) box are mapped onto an upright rectangle by a perspective transform,
 * so a tilted line comes out level and without its neighbours; a crop at least 1.5× taller than
 * wide is turned a quarter counter-clockwise (vertical text runs top to bottom).
 */

/** The crop's text is at most this many pixels high: the recognizer scales every line to 48 anyway. */
const MAX_CROP_HEIGHT = 96;

/**
 * The pixels inside `quad` (corners clockwise from the one that becomes the crop's top-left),
 * warped upright. Samples bilinearly; outside the image the nearest edge pixel is repeated
 * (OpenCV's BORDER_REPLICATE, as PaddleOCR warps). `heightScale` grows (or shrinks) the quad across
 * its text direction about its centre line first; the crop is stretched along the text by
 * `stretch` (default: as much).
 */
export function straightenedCrop(image: RgbImage, quad: Point[], heightScale = 1, stretch = heightScale): RgbImage {
  // Whether the text stands up is the box's own shape, before any margin is added.
  const standing =
    Math.max(distance(quad[0], quad[3]), distance(quad[1], quad[2])) >=
    1.5 * Math.max(distance(quad[0], quad[1]), distance(quad[3], quad[2]));
  if (heightScale !== 1) quad = taller(quad, heightScale);
  const [p0, p1, p2, p3] = quad;
  const fullWidth = Math.max(distance(p0, p1), distance(p3, p2));
  const fullHeight = Math.max(distance(p0, p3), distance(p1, p2));
  const shorter = Math.min(fullWidth, fullHeight);
  const scale = shorter > MAX_CROP_HEIGHT ? MAX_CROP_HEIGHT / shorter : 1;
  // Stretched along the text: the margin made the text smaller in the recognizer's 48-pixel rows,
  // and fewer columns per character merged double letters ("yellow" → "yellw").
  const width = Math.max(1, Math.round(fullWidth * stretch * scale));
  const height = Math.max(1, Math.round(fullHeight * scale));
  const toSource = homography(
    [
      [0, 0],
      [width, 0],
      [width, height],
      [0, height],
    ],
    quad,
  );
  const crop = warp(image, toSource, width, height);
  return standing ? rotateQuarterCounterClockwise(crop) : crop;
}

/** The quad `scale` times as high (p0→p3 and p1→p2), about the line through the middle of those sides. */
function taller(quad: Point[], scale: number): Point[] {
  const move = (from: Point, away: Point): Point => [
    from[0] + ((from[0] - away[0]) * (scale - 1)) / 2,
    from[1] + ((from[1] - away[1]) * (scale - 1)) / 2,
  ];
  return [move(quad[0], quad[3]), move(quad[1], quad[2]), move(quad[2], quad[1]), move(quad[3], quad[0])];
}

function distance(a: Point, b: Point): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

/**
 * The 3×3 projective transform (row-major, h[8] = 1) taking each `from` point to the `to` point of
 * the same index: the 8×8 linear system of OpenCV's getPerspectiveTransform, by Gaussian elimination.
 */
export function homography(from: Point[], to: Point[]): number[] {
  const rows: number[][] = [];
  for (let i = 0; i < 4; i++) {
    const [u, v] = from[i];
    const [x, y] = to[i];
    rows.push([u, v, 1, 0, 0, 0, -u * x, -v * x, x]);
    rows.push([0, 0, 0, u, v, 1, -u * y, -v * y, y]);
  }
  for (let col = 0; col < 8; col++) {
    let pivot = col;
    for (let r = col + 1; r < 8; r++) if (Math.abs(rows[r][col]) > Math.abs(rows[pivot][col])) pivot = r;
    [rows[col], rows[pivot]] = [rows[pivot], rows[col]];
    const lead = rows[col][col];
    if (Math.abs(lead) < 1e-12) throw new RangeError('homography: the four points are collinear');
    for (let r = 0; r < 8; r++) {
      if (r === col) continue;
      const factor = rows[r][col] / lead;
      if (factor === 0) continue;
      for (let c = col; c < 9; c++) rows[r][c] -= factor * rows[col][c];
    }
  }
  return [...rows.map((row, i) => row[8] / row[i]), 1];
}

/** Where the transform `h` takes the point (u, v). */
export function project(h: number[], u: number, v: number): Point {
  const w = h[6] * u + h[7] * v + h[8];
  return [(h[0] * u + h[1] * v + h[2]) / w, (h[3] * u + h[4] * v + h[5]) / w];
}

/** A width×height image whose pixel (u, v) is the source image, sampled bilinearly at toSource(u, v). */
export function warp(image: RgbImage, toSource: number[], width: number, height: number): RgbImage {
  const { data: source, width: sw, height: sh } = image;
  const data = Buffer.allocUnsafe(width * height * 3);
  const [h0, h1, h2, h3, h4, h5, h6, h7, h8] = toSource;
  let to = 0;
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++, to += 3) {
      // project(toSource, u, v), inlined: a pair allocated per pixel cost more than the sampling.
      const w = h6 * u + h7 * v + h8;
      const x = (h0 * u + h1 * v + h2) / w;
      const y = (h3 * u + h4 * v + h5) / w;
      const cx = Math.min(Math.max(x, 0), sw - 1);
      const cy = Math.min(Math.max(y, 0), sh - 1);
      const x0 = Math.floor(cx);
      const y0 = Math.floor(cy);
      const x1 = Math.min(x0 + 1, sw - 1);
      const y1 = Math.min(y0 + 1, sh - 1);
      const fx = cx - x0;
      const fy = cy - y0;
      const a = (y0 * sw + x0) * 3;
      const b = (y0 * sw + x1) * 3;
      const c = (y1 * sw + x0) * 3;
      const d = (y1 * sw + x1) * 3;
      // The three channels written out, and rounding by + 0.5 (the values are not negative).
      let top = source[a] + (source[b] - source[a]) * fx;
      let bottom = source[c] + (source[d] - source[c]) * fx;
      data[to] = top + (bottom - top) * fy + 0.5;
      top = source[a + 1] + (source[b + 1] - source[a + 1]) * fx;
      bottom = source[c + 1] + (source[d + 1] - source[c + 1]) * fx;
      data[to + 1] = top + (bottom - top) * fy + 0.5;
      top = source[a + 2] + (source[b + 2] - source[a + 2]) * fx;
      bottom = source[c + 2] + (source[d + 2] - source[c + 2]) * fx;
      data[to + 2] = top + (bottom - top) * fy + 0.5;
    }
  }
  return { data, width, height };
}

/** The image turned upside down: its pixels in reverse order. */
export function rotateHalf(image: RgbImage): RgbImage {
  const { data: source, width, height } = image;
  const data = Buffer.allocUnsafe(source.length);
  for (let from = 0, to = source.length - 3; from < source.length; from += 3, to -= 3) {
    data[to] = source[from];
    data[to + 1] = source[from + 1];
    data[to + 2] = source[from + 2];
  }
  return { data, width, height };
}

/** The image turned a quarter counter-clockwise (numpy's rot90): column x becomes row width-1-x. */
function rotateQuarterCounterClockwise(image: RgbImage): RgbImage {
  const { data: source, width, height } = image;
  const data = Buffer.allocUnsafe(source.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * 3;
      const to = ((width - 1 - x) * height + y) * 3;
      data[to] = source[from];
      data[to + 1] = source[from + 1];
      data[to + 2] = source[from + 2];
    }
  }
  return { data, width: height, height: width };
}

import type { Placement } from '../preprocess.js';

/**
 * DB (Differentiable Binarization) text detection post-processing, as PaddleOCR's DBPostProcess does
 * it, without OpenCV: binarize the probability map, find connected regions, fit each a minimum-area
 * rectangle, keep those whose mean probability is high enough, grow them by the unclip margin (the
 * model is trained on shrunken text regions) and map them back to the original image.
 */

export type Point = [number, number];

export interface TextBox {
  /** Four corners in original image pixels, clockwise from the top-left one. */
  box: Point[];
  /** Mean probability inside the box before it was grown. */
  score: number;
}

export interface DbOptions {
  /** A map pixel above this is text (PaddleOCR's thresh, 0.3). */
  threshold: number;
  /** A region whose mean probability is below this is dropped (box_thresh, 0.6). */
  boxThreshold: number;
  /** Growth: each side moves out by area × ratio / perimeter (unclip_ratio, 1.5). */
  unclipRatio: number;
  /** Regions looked at, at most (max_candidates, 1000). */
  maxCandidates: number;
  /** Boxes with a shorter side below this (in map pixels) are dropped (min_size, 3). */
  minSize: number;
}

export const DB_DEFAULTS: DbOptions = {
  threshold: 0.3,
  boxThreshold: 0.6,
  unclipRatio: 1.5,
  maxCandidates: 1000,
  minSize: 3,
};

/** A rotated rectangle: centre, unit axes u and v, and half-extents along them. */
interface Rect {
  cx: number;
  cy: number;
  u: Point;
  v: Point;
  halfU: number;
  halfV: number;
}

/**
 * Text boxes of one image from its probability map (`mapWidth` × `mapHeight`, row-major); only the
 * part of the map the image covers (placement.region) is searched.
 */
export function detectTextBoxes(
  map: ArrayLike<number>,
  mapWidth: number,
  placement: Placement,
  options: DbOptions = DB_DEFAULTS,
): TextBox[] {
  const boxes: TextBox[] = [];
  for (const outline of textRegions(map, mapWidth, placement.region, options)) {
    const rect = minAreaRect(convexHull(outline));
    if (rect === undefined || 2 * Math.min(rect.halfU, rect.halfV) < options.minSize) continue;
    const score = meanInside(map, mapWidth, placement.region, rect);
    if (score < options.boxThreshold) continue;
    const grown = unclip(rect, options.unclipRatio);
    if (2 * Math.min(grown.halfU, grown.halfV) < options.minSize + 2) continue;
    boxes.push({ box: toImage(corners(grown), placement), score });
  }
  return boxes;
}

/**
 * Connected regions (8-neighbourhood) of map pixels above the threshold, each given as the leftmost
 * and rightmost pixel of every row it spans: the convex hull of those is the hull of the region.
 */
function textRegions(
  map: ArrayLike<number>,
  mapWidth: number,
  region: Placement['region'],
  options: DbOptions,
): Point[][] {
  const { left, top, width, height } = region;
  // 1 = text, not yet visited; 0 = background or visited.
  const text = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (map[(top + y) * mapWidth + left + x] > options.threshold) text[y * width + x] = 1;
    }
  }
  const regions: Point[][] = [];
  const stack: number[] = [];
  const rowMin = new Int32Array(height);
  const rowMax = new Int32Array(height);
  for (let start = 0; start < text.length && regions.length < options.maxCandidates; start++) {
    if (text[start] === 0) continue;
    rowMin.fill(width);
    rowMax.fill(-1);
    text[start] = 0;
    stack.push(start);
    while (stack.length > 0) {
      const at = stack.pop()!;
      const x = at % width;
      const y = (at - x) / width;
      if (x < rowMin[y]) rowMin[y] = x;
      if (x > rowMax[y]) rowMax[y] = x;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const next = ny * width + nx;
          if (text[next] === 1) {
            text[next] = 0;
            stack.push(next);
          }
        }
      }
    }
    const outline: Point[] = [];
    for (let y = 0; y < height; y++) {
      if (rowMax[y] < 0) continue;
      outline.push([left + rowMin[y], top + y], [left + rowMax[y], top + y]);
    }
    regions.push(outline);
  }
  return regions;
}

/** Andrew's monotone chain; the hull counter-clockwise in y-down coordinates, without repeats. */
export function convexHull(points: Point[]): Point[] {
  const sorted = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const half = (list: Point[]) => {
    const hull: Point[] = [];
    for (const p of list) {
      while (hull.length >= 2 && cross(hull[hull.length - 2], hull[hull.length - 1], p) <= 0) hull.pop();
      hull.push(p);
    }
    hull.pop();
    return hull;
  };
  return [...half(sorted), ...half([...sorted].reverse())];
}

/** The smallest rectangle around a convex polygon: one of its sides lies on a hull edge (rotating calipers). */
export function minAreaRect(hull: Point[]): Rect | undefined {
  if (hull.length < 3) return undefined;
  let best: Rect | undefined;
  let bestArea = Infinity;
  for (let i = 0; i < hull.length; i++) {
    const [ax, ay] = hull[i];
    const [bx, by] = hull[(i + 1) % hull.length];
    const length = Math.hypot(bx - ax, by - ay);
    if (length === 0) continue;
    const u: Point = [(bx - ax) / length, (by - ay) / length];
    const v: Point = [-u[1], u[0]];
    let minU = Infinity;
    let maxU = -Infinity;
    let minV = Infinity;
    let maxV = -Infinity;
    for (const [px, py] of hull) {
      const pu = px * u[0] + py * u[1];
      const pv = px * v[0] + py * v[1];
      minU = Math.min(minU, pu);
      maxU = Math.max(maxU, pu);
      minV = Math.min(minV, pv);
      maxV = Math.max(maxV, pv);
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea) {
      bestArea = area;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = {
        cx: cu * u[0] + cv * v[0],
        cy: cu * u[1] + cv * v[1],
        u,
        v,
        halfU: (maxU - minU) / 2,
        halfV: (maxV - minV) / 2,
      };
    }
  }
  return best;
}

/** Mean map value over the pixels inside the rectangle (PaddleOCR's "fast" box score). */
function meanInside(map: ArrayLike<number>, mapWidth: number, region: Placement['region'], rect: Rect): number {
  const points = corners(rect);
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const x0 = Math.max(region.left, Math.floor(Math.min(...xs)));
  const x1 = Math.min(region.left + region.width - 1, Math.ceil(Math.max(...xs)));
  const y0 = Math.max(region.top, Math.floor(Math.min(...ys)));
  const y1 = Math.min(region.top + region.height - 1, Math.ceil(Math.max(...ys)));
  let sum = 0;
  let count = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const du = (x - rect.cx) * rect.u[0] + (y - rect.cy) * rect.u[1];
      const dv = (x - rect.cx) * rect.v[0] + (y - rect.cy) * rect.v[1];
      // Half a pixel of slack: pixel centres on the rectangle's edge belong to it.
      if (Math.abs(du) <= rect.halfU + 0.5 && Math.abs(dv) <= rect.halfV + 0.5) {
        sum += map[y * mapWidth + x];
        count += 1;
      }
    }
  }
  return count === 0 ? 0 : sum / count;
}

/**
 * PaddleOCR offsets the polygon by area × ratio / perimeter (pyclipper, round joins) and fits a
 * minimum-area rectangle again; for a rectangle that is the same rectangle with every side moved out
 * by that distance.
 */
function unclip(rect: Rect, ratio: number): Rect {
  const w = 2 * rect.halfU;
  const h = 2 * rect.halfV;
  const distance = (w * h * ratio) / (2 * (w + h));
  return { ...rect, halfU: rect.halfU + distance, halfV: rect.halfV + distance };
}

function corners(rect: Rect): Point[] {
  const { cx, cy, u, v, halfU, halfV } = rect;
  return [
    [-1, -1],
    [1, -1],
    [1, 1],
    [-1, 1],
  ].map(([su, sv]): Point => [cx + su * halfU * u[0] + sv * halfV * v[0], cy + su * halfU * u[1] + sv * halfV * v[1]]);
}

/** Map coordinates back to the original image, clamped to it, rounded, clockwise from the top-left. */
function toImage(points: Point[], placement: Placement): Point[] {
  const mapped = points.map(([x, y]): Point => [
    Math.round(Math.min(Math.max((x - placement.offsetX) / placement.scaleX, 0), placement.width)),
    Math.round(Math.min(Math.max((y - placement.offsetY) / placement.scaleY, 0), placement.height)),
  ]);
  const cx = mapped.reduce((s, p) => s + p[0], 0) / 4;
  const cy = mapped.reduce((s, p) => s + p[1], 0) / 4;
  // In y-down coordinates, increasing angle around the centre runs clockwise on screen.
  mapped.sort((a, b) => Math.atan2(a[1] - cy, a[0] - cx) - Math.atan2(b[1] - cy, b[0] - cx));
  const first = mapped.reduce((best, p, i) => (p[0] + p[1] < mapped[best][0] + mapped[best][1] ? i : best), 0);
  return [...mapped.slice(first), ...mapped.slice(0, first)];
}

import type { Point } from './postprocess/db-text-detection.js';

/**
 * Page geometry of the `ocr` pipeline: how a page is turned (0, 90, 180 or 270° clockwise to read
 * it upright), each box's corners in reading direction, and the reading order of the lines, all
 * worked out from the boxes themselves.
 */

export type PageTurn = 0 | 90 | 180 | 270;

/** Where an image point lands once the image (width × height) is turned `turn` degrees clockwise. */
export function uprightPoint([x, y]: Point, turn: PageTurn, width: number, height: number): Point {
  switch (turn) {
    case 0:
      return [x, y];
    case 90:
      return [height - y, x];
    case 180:
      return [width - x, height - y];
    case 270:
      return [y, width - x];
  }
}

/**
 * The box's own corners (clockwise), started at the one that is top-left when the page is read
 * upright: the corner whose outgoing edge points furthest to the right in the upright page. Boxes
 * stay in the photo's coordinates; only the order of their corners changes.
 */
export function readingCorners(box: Point[], turn: PageTurn, width: number, height: number): Point[] {
  const upright = box.map((p) => uprightPoint(p, turn, width, height));
  let start = 0;
  let bestDx = -Infinity;
  for (let i = 0; i < upright.length; i++) {
    const dx = upright[(i + 1) % upright.length][0] - upright[i][0];
    if (dx > bestDx) {
      bestDx = dx;
      start = i;
    }
  }
  return [...box.slice(start), ...box.slice(0, start)];
}

/**
 * Whether the page lies on its side: most elongated boxes are taller than wide. Which side (90 or
 * 270) takes the orientation classifier's votes.
 */
export function looksSideways(boxes: Point[][]): boolean {
  let tall = 0;
  let wide = 0;
  for (const box of boxes) {
    const across = Math.hypot(box[1][0] - box[0][0], box[1][1] - box[0][1]);
    const down = Math.hypot(box[3][0] - box[0][0], box[3][1] - box[0][1]);
    // The box's sides as a slope-independent test: which of its sides runs more vertically.
    const acrossIsVertical = Math.abs(box[1][1] - box[0][1]) > Math.abs(box[1][0] - box[0][0]);
    const [horizontal, vertical] = acrossIsVertical ? [down, across] : [across, down];
    if (vertical >= 1.5 * horizontal) tall += 1;
    else if (horizontal >= 1.5 * vertical) wide += 1;
  }
  return tall > wide;
}

interface Line {
  index: number;
  cx: number;
  cy: number;
  halfWidth: number;
  halfHeight: number;
}

/**
 * The order in which a person reads the lines, given each box's corners in the upright page (as
 * readingCorners orders them, mapped by uprightPoint). Lines are first levelled by the page's skew
 * (the median slope of the longer boxes), so a tilted photo's lines stay apart. Where a clear
 * vertical gap splits the page into columns of long lines, each column is read in turn. Within a
 * column, a box joins a row when it overlaps that row's boxes vertically by at least half the
 * shorter height and overlaps none of them horizontally; rows are read top to bottom, each left to
 * right. Returns indices into `quads`.
 */
export function readingOrder(quads: Point[][]): number[] {
  if (quads.length === 0) return [];
  const slopes = quads
    .filter(
      (q) => Math.hypot(q[1][0] - q[0][0], q[1][1] - q[0][1]) >= 2 * Math.hypot(q[3][0] - q[0][0], q[3][1] - q[0][1]),
    )
    .map((q) => Math.atan2(q[1][1] - q[0][1], q[1][0] - q[0][0]));
  const skew = slopes.length === 0 ? 0 : median(slopes);
  const cos = Math.cos(-skew);
  const sin = Math.sin(-skew);
  const lines: Line[] = quads.map((q, index) => {
    const mx = (q[0][0] + q[1][0] + q[2][0] + q[3][0]) / 4;
    const my = (q[0][1] + q[1][1] + q[2][1] + q[3][1]) / 4;
    return {
      index,
      cx: mx * cos - my * sin,
      cy: mx * sin + my * cos,
      halfWidth: Math.max(Math.hypot(q[1][0] - q[0][0], q[1][1] - q[0][1]), 1) / 2,
      halfHeight: Math.max(Math.hypot(q[3][0] - q[0][0], q[3][1] - q[0][1]), 1) / 2,
    };
  });
  return columnsOf(lines).flatMap(rowsOf);
}

/** Splits at the widest empty vertical stripe when both sides hold several long lines; else one column. */
function columnsOf(lines: Line[]): Line[][] {
  if (lines.length < 6) return [lines];
  const lineHeight = 2 * median(lines.map((l) => l.halfHeight));
  const spans = lines.map((l) => [l.cx - l.halfWidth, l.cx + l.halfWidth]).sort((a, b) => a[0] - b[0]);
  let best: { at: number; width: number } | undefined;
  let reach = spans[0][1];
  for (const [left, right] of spans.slice(1)) {
    const gap = left - reach;
    if (gap > 0 && (best === undefined || gap > best.width)) best = { at: (left + reach) / 2, width: gap };
    reach = Math.max(reach, right);
  }
  if (best === undefined || best.width < 1.5 * lineHeight) return [lines];
  const left = lines.filter((l) => l.cx < best.at);
  const right = lines.filter((l) => l.cx >= best.at);
  // Long lines on both sides make columns of text; short ones on one side (prices on a receipt) are a table.
  const columnar = (side: Line[]) => side.length >= 3 && 2 * median(side.map((l) => l.halfWidth)) >= 6 * lineHeight;
  if (!columnar(left) || !columnar(right)) return [lines];
  return [...columnsOf(left), ...columnsOf(right)];
}

function rowsOf(lines: Line[]): number[] {
  const rows: Line[][] = [];
  for (const line of [...lines].sort((a, b) => a.cy - b.cy)) {
    let bestRow: Line[] | undefined;
    let bestOverlap = 0;
    for (const row of rows) {
      if (row.some((other) => horizontalOverlap(line, other) > 0.2 * Math.min(line.halfWidth, other.halfWidth))) {
        continue;
      }
      const overlap = Math.min(...row.map((other) => verticalOverlapRatio(line, other)));
      if (overlap >= 0.5 && overlap > bestOverlap) {
        bestOverlap = overlap;
        bestRow = row;
      }
    }
    if (bestRow === undefined) rows.push([line]);
    else bestRow.push(line);
  }
  const centre = (row: Line[]) => row.reduce((sum, l) => sum + l.cy, 0) / row.length;
  return rows
    .sort((a, b) => centre(a) - centre(b))
    .flatMap((row) => row.sort((a, b) => a.cx - b.cx).map((l) => l.index));
}

function verticalOverlapRatio(a: Line, b: Line): number {
  const overlap =
    Math.min(a.cy + a.halfHeight, b.cy + b.halfHeight) - Math.max(a.cy - a.halfHeight, b.cy - b.halfHeight);
  return overlap / (2 * Math.min(a.halfHeight, b.halfHeight));
}

function horizontalOverlap(a: Line, b: Line): number {
  return Math.min(a.cx + a.halfWidth, b.cx + b.halfWidth) - Math.max(a.cx - a.halfWidth, b.cx - b.halfWidth);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

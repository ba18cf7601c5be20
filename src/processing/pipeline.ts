import sharp from 'sharp';
import type { PipelineConfig } from '../config/processing-config.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import type { RgbImage } from './image-decode.js';
import { imageModelFor, predictImages, timed, type StageTimings } from './image-model.js';
import type { Point } from './postprocess/db-text-detection.js';

/** One line of text read from a photo. */
export interface OcrLine {
  text: string;
  confidence: number;
  /** Four corners in the photo's pixels (after EXIF orientation), clockwise from the top-left. */
  box: Point[];
}

/**
 * The `ocr` pipeline, as PaddleOCR runs it: the detector finds text boxes; each box is cut out
 * (turned upright if it is taller than wide); the orientation classifier flags crops that read
 * upside down, which are turned 180°; the recognizer reads every crop of every image in one batch.
 * Lines come back in reading order, top to bottom and left to right.
 */
export async function runOcrPipeline(
  registry: ModelRegistry,
  pipeline: PipelineConfig,
  images: RgbImage[],
  timings: StageTimings,
): Promise<OcrLine[][]> {
  const step = (name: string) => registry.resolveReady(name);
  const detector = imageModelFor(step(pipeline.detector), 'db_text_detection', 'detector');
  const recognizer = imageModelFor(step(pipeline.recognizer), 'ctc', 'recognizer');
  const orientation =
    pipeline.orientation === undefined ? undefined : imageModelFor(step(pipeline.orientation), 'top_k', 'orientation');

  const detected = await predictImages<'db_text_detection'>(detector, images, timings);
  const boxes = detected.map((found) => readingOrder(found.map((b) => b.box)));
  const owners = boxes.flatMap((list, image) => list.map((box) => ({ image, box })));
  if (owners.length === 0) return images.map(() => []);

  let crops = await timed(timings, 'preprocess', () =>
    Promise.all(owners.map(({ image, box }) => cropUpright(images[image], box))),
  );
  if (orientation !== undefined) {
    const threshold = pipeline.orientation_threshold ?? 0.9;
    const orientations = await predictImages<'top_k'>(orientation, crops, timings);
    crops = await timed(timings, 'preprocess', () =>
      Promise.all(
        crops.map((crop, i) => {
          const best = orientations[i][0];
          return best.label === '180' && best.score >= threshold ? rotate(crop, 180) : crop;
        }),
      ),
    );
  }
  const texts = await predictImages<'ctc'>(recognizer, crops, timings);

  const minConfidence = pipeline.min_confidence ?? 0.5;
  const lines: OcrLine[][] = images.map(() => []);
  owners.forEach(({ image, box }, i) => {
    const { text, confidence } = texts[i];
    if (text !== '' && confidence >= minConfidence) lines[image].push({ text, confidence, box });
  });
  return lines;
}

/**
 * Top to bottom, and left to right within a line: a box joins the line of the box above it when
 * its vertical centre lies within that box's height.
 */
export function readingOrder(boxes: Point[][]): Point[][] {
  const bounds = (box: Point[]) => {
    const ys = box.map((p) => p[1]);
    return { top: Math.min(...ys), bottom: Math.max(...ys), left: Math.min(...box.map((p) => p[0])) };
  };
  const sorted = [...boxes].sort((a, b) => bounds(a).top - bounds(b).top);
  const rows: Point[][][] = [];
  for (const box of sorted) {
    const b = bounds(box);
    const centre = (b.top + b.bottom) / 2;
    const row = rows[rows.length - 1];
    const first = row === undefined ? undefined : bounds(row[0]);
    if (row !== undefined && first !== undefined && centre >= first.top && centre <= first.bottom) row.push(box);
    else rows.push([box]);
  }
  return rows.flatMap((row) => row.sort((a, b) => bounds(a).left - bounds(b).left));
}

/** The box's axis-aligned bounds cut from the image; a crop at least 1.5× taller than wide is turned to read left to right. */
async function cropUpright(image: RgbImage, box: Point[]): Promise<RgbImage> {
  const span = (values: number[], size: number) => {
    const start = Math.min(Math.max(Math.min(...values), 0), size - 1);
    const end = Math.min(Math.max(Math.max(...values), start + 1), size);
    return [start, end - start];
  };
  const [left, width] = span(
    box.map((p) => p[0]),
    image.width,
  );
  const [top, height] = span(
    box.map((p) => p[1]),
    image.height,
  );
  const crop = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).extract({
    left,
    top,
    width,
    height,
  });
  // Vertical text runs top to bottom: PaddleOCR turns such crops a quarter counter-clockwise.
  if (height >= 1.5 * width) crop.rotate(270);
  const { data, info } = await crop.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function rotate(image: RgbImage, angle: number): Promise<RgbImage> {
  const { data, info } = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .rotate(angle)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

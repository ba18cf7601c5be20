import type { PipelineConfig } from '../config/processing-config.js';
import type { ModelRegistry } from '../repository/model-registry.js';
import type { RgbImage } from './image-decode.js';
import { imageModelFor, noTime, predictImages, timed, type ImageModel, type StageTimings } from './image-model.js';
import type { Point } from './postprocess/db-text-detection.js';
import type { ScoredLabel } from './postprocess/top-k.js';
import { looksSideways, readingCorners, readingOrder, uprightPoint, type PageTurn } from './reading-order.js';
import { resizedForModel } from './preprocess.js';
import { recognizeInBatches, type RecognizerBatch } from './recognizer-batches.js';
import { rotateHalf, straightenedCrop } from './text-crops.js';

/** One line of text read from a photo. */
export interface OcrLine {
  text: string;
  confidence: number;
  /** Four corners in the photo's pixels (after EXIF orientation), clockwise from the top-left. */
  box: Point[];
}

/**
 * Where one run of the pipeline spent its time, for bench/ocr-pipeline.ts: wall-clock milliseconds
 * per step (each with the stage timings of its model requests), and every recognizer request.
 */
export interface OcrProfile {
  steps: Array<{ step: OcrStep; ms: number; stages: StageTimings }>;
  recognizerBatches: RecognizerBatch[];
}
export type OcrStep = 'detect' | 'crop' | 'orientation' | 'reading order' | 'recognize';

/** Crops per page the orientation classifier looks at to decide whether the page is upside down. */
const PAGE_VOTE_CROPS = 16;
/**
 * Each crop is cut this many times as high as its detected box (centred on it), and stretched along
 * the text by CROP_STRETCH. Measured on bench/ocr-set and the tests' pages (bench/RESULTS.md): the
 * box alone lost spaces on tilted, blurred pages ("sevenwater", 9.1 % CER); 1.4× without a stretch
 * fixed those but merged double letters in small print ("yellw", 37.5 % CER; the recognizer gives
 * each character fewer columns); 1.3× stretched 1.2× read both within 0.6 % (small print 5.5 %).
 */
const CROP_HEIGHT_SCALE = 1.3;
const CROP_STRETCH = 1.2;
/**
 * The page is turned when its lines, weighted by length, lean at least this far to 180° (from −1,
 * all upright, to 1, all upside down): a clear majority, so that one upside-down line on an upright
 * page (or a classifier's mistake on a sign of two lines) never turns the rest.
 */
const PAGE_FLIP_LEAN = 0.4;
/** Default recognizer_batch_columns, measured in bench/ocr-batching.ts (bench/RESULTS.md). */
const RECOGNIZER_BATCH_COLUMNS = 1200;
/** A single detected box covering at least this share of the image: the image is one word or line. */
const LONE_LINE_COVER = 0.5;

/** One image on its way through the pipeline. */
interface Page {
  image: RgbImage;
  /** Detected boxes, clockwise from the top-left in the photo. */
  boxes: Point[][];
  /** Degrees clockwise that turn the photo upright. */
  turn: PageTurn;
  /** Each box's corners from its top-left when read upright. */
  corners: Point[][];
  crops: RgbImage[];
}

/**
 * The `ocr` pipeline, as PaddleOCR runs it: the detector finds text boxes; each box is cut out
 * straightened (perspective warp of its rotated rectangle); the page's orientation is decided once
 * from the boxes' shapes (a page on its side) and the orientation classifier's votes (upside down),
 * never by flipping single upright lines unless `line_orientation` asks for it; the recognizer reads
 * the crops of all images in batches of similar width spread over its instances. An image in which
 * the detector finds nothing, or one box covering most of it, is read whole (a word or a line).
 * Lines come back in reading order (reading-order.ts).
 */
export async function runOcrPipeline(
  registry: ModelRegistry,
  pipeline: PipelineConfig,
  images: RgbImage[],
  timings: StageTimings,
  profile?: OcrProfile,
): Promise<OcrLine[][]> {
  const ready = (name: string) => registry.resolveReady(name);
  const detector = imageModelFor(ready(pipeline.detector), 'db_text_detection', 'detector');
  const recognizer = imageModelFor(ready(pipeline.recognizer), 'ctc', 'recognizer');
  const orientation =
    pipeline.orientation === undefined ? undefined : imageModelFor(ready(pipeline.orientation), 'top_k', 'orientation');
  const step = profiledSteps(timings, profile);

  const detected = await step('detect', (own) => predictImages<'db_text_detection'>(detector, images, own));
  const pages = await step('crop', (own) =>
    timed(own, 'preprocess', () =>
      Promise.all(images.map((image, i) => cutPage(image, loneLineOr(image, boxesOf(detected[i])), recognizer))),
    ),
  );
  if (orientation !== undefined) {
    await step('orientation', (own) => turnUpsideDownPages(orientation, pages, pipeline, own));
  }

  const order = await step('reading order', (own) =>
    timed(own, 'preprocess', () =>
      pages.map((page) =>
        readingOrder(
          page.corners.map((quad) => quad.map((p) => uprightPoint(p, page.turn, page.image.width, page.image.height))),
        ),
      ),
    ),
  );
  const texts = await step('recognize', (own) =>
    recognizeInBatches(
      recognizer,
      pages.flatMap((page) => page.crops),
      pipeline.recognizer_batch_size ?? 6,
      pipeline.recognizer_batch_columns ?? RECOGNIZER_BATCH_COLUMNS,
      own,
      profile?.recognizerBatches,
    ),
  );

  const minConfidence = pipeline.min_confidence ?? 0.5;
  let first = 0;
  return pages.map((page, p) => {
    const lines: OcrLine[] = [];
    for (const i of order[p]) {
      // The margin around a crop can read as a space at either end.
      const text = texts[first + i].text.trim();
      const { confidence } = texts[first + i];
      if (text !== '' && confidence >= minConfidence) lines.push({ text, confidence, box: page.boxes[i] });
    }
    first += page.crops.length;
    return lines;
  });
}

/**
 * Runs each step with its own stage timings, added to the request's; with a profile, also records
 * the step's wall-clock time and stages.
 */
function profiledSteps(timings: StageTimings, profile: OcrProfile | undefined) {
  return async <T>(name: OcrStep, work: (own: StageTimings) => Promise<T>): Promise<T> => {
    const own = noTime();
    const start = performance.now();
    try {
      return await work(own);
    } finally {
      for (const stage of Object.keys(own) as Array<keyof StageTimings>) timings[stage] += own[stage];
      profile?.steps.push({ step: name, ms: performance.now() - start, stages: own });
    }
  };
}

const boxesOf = (found: Array<{ box: Point[] }>) => found.map((b) => b.box);

/** The detector's boxes, or the whole image when it found none or one box covering most of it. */
function loneLineOr(image: RgbImage, boxes: Point[][]): Point[][] {
  const { width, height } = image;
  const covers = boxes.length === 1 && quadArea(boxes[0]) >= LONE_LINE_COVER * width * height;
  if (boxes.length > 0 && !covers) return boxes;
  return [
    [
      [0, 0],
      [width, 0],
      [width, height],
      [0, height],
    ],
  ];
}

function quadArea(quad: Point[]): number {
  let twice = 0;
  for (let i = 0; i < quad.length; i++) {
    const [x0, y0] = quad[i];
    const [x1, y1] = quad[(i + 1) % quad.length];
    twice += x0 * y1 - x1 * y0;
  }
  return Math.abs(twice) / 2;
}

/**
 * Straightened crops of every box, read as the page's shape suggests (on its side when most boxes
 * stand up), already resized for the recognizer: sharp resizes each crop on its own threads while
 * this one warps the next, at a moment when the models' threads are idle (in the recognizer's
 * requests, the resizing took cores from its runs). The orientation classifier's pieces are cut
 * from these crops too, at its input height already.
 */
async function cutPage(image: RgbImage, boxes: Point[][], recognizer: ImageModel): Promise<Page> {
  const turn: PageTurn = looksSideways(boxes) ? 90 : 0;
  const corners = boxes.map((box) => readingCorners(box, turn, image.width, image.height));
  // Only a resize that keeps the crop's shape: the orientation votes weigh crops by their length.
  const keepsShape = recognizer.preprocess.resize.mode === 'fixed_height';
  const crops = await Promise.all(
    corners.map((quad) => {
      const crop = straightenedCrop(image, quad, CROP_HEIGHT_SCALE, CROP_STRETCH);
      return keepsShape ? resizedForModel(crop, recognizer.preprocess) : crop;
    }),
  );
  return { image, boxes, turn, corners, crops };
}

/**
 * The orientation classifier votes, page by page, on the longest crops: when the page reads upside
 * down (the votes, weighted by line length, lean to 180°), the page is turned 180° and every crop
 * with it. With `line_orientation`, single crops the classifier reads as 180° (at least
 * orientation_threshold) are turned as well; off by default, because it turns upright tilted lines
 * with high confidence (PaddleOCR ships with it off too).
 */
async function turnUpsideDownPages(
  orientation: ImageModel,
  pages: Page[],
  pipeline: PipelineConfig,
  timings: StageTimings,
): Promise<void> {
  const perLine = pipeline.line_orientation ?? false;
  const voters = pages.map((page) => {
    const byLength = page.crops.map((crop, i) => ({ i, ratio: crop.width / crop.height }));
    byLength.sort((a, b) => b.ratio - a.ratio);
    return (perLine ? byLength : byLength.slice(0, PAGE_VOTE_CROPS)).map((entry) => entry.i);
  });
  const asked = pages.flatMap((page, p) =>
    voters[p].map((i) => (perLine ? page.crops[i] : middlePiece(page.crops[i]))),
  );
  if (asked.length === 0) return;
  const answers = await predictImages<'top_k'>(orientation, asked, timings);
  const threshold = pipeline.orientation_threshold ?? 0.9;
  let next = 0;
  await timed(timings, 'preprocess', () => {
    pages.forEach((page, p) => {
      const votes = voters[p].map((i) => ({ i, upsideDown: upsideDownProbability(answers[next++]) }));
      let lean = 0;
      let weight = 0;
      for (const { i, upsideDown } of votes) {
        const w = page.crops[i].width / page.crops[i].height;
        lean += w * (2 * upsideDown - 1);
        weight += w;
      }
      const pageFlips = weight > 0 && lean / weight > PAGE_FLIP_LEAN;
      if (pageFlips) {
        page.turn = ((page.turn + 180) % 360) as PageTurn;
        page.corners = page.corners.map((quad) => [...quad.slice(2), ...quad.slice(0, 2)]);
        page.crops = page.crops.map(rotateHalf);
      }
      if (!perLine) return;
      for (const { i, upsideDown } of votes) {
        const relative = pageFlips ? 1 - upsideDown : upsideDown;
        if (relative >= threshold) {
          page.crops[i] = rotateHalf(page.crops[i]);
        }
      }
    });
  });
}

/** P(180°) from the classifier's labels 0 and 180. */
function upsideDownProbability(labels: ScoredLabel[]): number {
  const best = labels[0];
  return best.label === '180' ? best.score : 1 - best.score;
}

/**
 * The middle of a long line, four times as wide as high: the classifier's input is 48×192, so a
 * whole long line would be squeezed into it until its letters no longer tell which way is up.
 */
function middlePiece(crop: RgbImage): RgbImage {
  const width = Math.min(crop.width, 4 * crop.height);
  if (width === crop.width) return crop;
  const left = Math.floor((crop.width - width) / 2);
  const data = Buffer.allocUnsafe(width * crop.height * 3);
  for (let y = 0; y < crop.height; y++) {
    crop.data.copy(data, y * width * 3, (y * crop.width + left) * 3, (y * crop.width + left + width) * 3);
  }
  return { data, width, height: crop.height };
}

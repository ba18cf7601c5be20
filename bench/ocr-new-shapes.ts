/**
 * What an input shape the session has not seen costs, against the same shape again, with and
 * without ONNX Runtime's memory arena: the text recognizer (float and int8) on lines of new widths,
 * the text detector on pages of new sizes. Every line of a new photo has a new width, and a photo of
 * a new size gives the detector a new shape, so the first figure is what users get; a bench that
 * repeats one photo sees the second. Run it as deployed and with glibc's defaults:
 *
 *   env MALLOC_MMAP_THRESHOLD_=131072 node --import tsx bench/ocr-new-shapes.ts
 *   node --import tsx bench/ocr-new-shapes.ts
 *
 * One intra-op thread; recognizer 1×3×48×W for W = 1000, 1008, … 1192 (25 widths), detector seven
 * page sizes around 960×704; each shape run twice in a row; medians, and the RSS after each
 * session's runs. The int8 recognizer is the file `precision: int8` built into the cache folder
 * (start the server once first); without it only float is measured.
 */
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { defaultCacheDir } from '../src/quantize/int8-cache.js';
import { OCR_ASSETS } from '../test/helpers/ocr.js';

const FLOAT = path.join(OCR_ASSETS, 'ch_PP-OCRv4_rec_infer.onnx');
const DETECTOR = path.join(OCR_ASSETS, 'ch_PP-OCRv4_det_infer.onnx');
const cache = path.join(defaultCacheDir(), 'int8');
const int8 = existsSync(cache)
  ? readdirSync(cache).find((file) => file.startsWith('ch_PP-OCRv4_rec_infer.int8-') && file.endsWith('.onnx'))
  : undefined;
const LINE_WIDTHS = Array.from({ length: 25 }, (_, i) => [48, 1000 + 8 * i]);
const PAGE_SIZES = [
  [960, 704],
  [960, 736],
  [928, 704],
  [704, 960],
  [960, 672],
  [896, 672],
  [960, 640],
];
const models: Array<[string, string, number[][]]> = [['recognizer float', FLOAT, LINE_WIDTHS]];
if (int8 !== undefined) models.push(['recognizer int8', path.join(cache, int8), LINE_WIDTHS]);
else console.log(`no int8 recognizer in ${cache}: start the server once to build it; float only`);
models.push(['detector float', DETECTOR, PAGE_SIZES]);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
const input = ([height, width]: number[]) =>
  new ort.Tensor('float32', new Float32Array(3 * height * width).fill(0.3), [1, 3, height, width]);

console.log(`MALLOC_MMAP_THRESHOLD_ ${process.env.MALLOC_MMAP_THRESHOLD_ ?? 'glibc default'}\n`);
console.log('| model | arena | new shape ms | same shape again ms | RSS after MB |\n|---|---|---|---|---|');
for (const [label, file, shapes] of models) {
  for (const arena of [true, false]) {
    const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, enableCpuMemArena: arena });
    await session.run({ x: input(shapes === PAGE_SIZES ? [640, 640] : [48, 320]) });
    const first: number[] = [];
    const again: number[] = [];
    for (const shape of shapes) {
      for (const times of [first, again]) {
        const start = performance.now();
        await session.run({ x: input(shape) });
        times.push(performance.now() - start);
      }
    }
    const rss = process.memoryUsage().rss / 2 ** 20;
    await session.release();
    console.log(
      `| ${label} | ${arena ? 'on' : 'off'} | ${median(first).toFixed(0)} | ${median(again).toFixed(0)} | ${rss.toFixed(0)} |`,
    );
  }
}
const [load1, load5] = os.loadavg();
console.log(`\nload average ${load1.toFixed(2)} / ${load5.toFixed(2)} (1 / 5 min) at the end, Node ${process.version}`);

/**
 * What a text line of a width the session has not seen costs, against the same width again: the
 * recognizer with and without ONNX Runtime's memory arena, float and int8. Every line of a new photo
 * has a new width, so the first figure is what users get; a bench that repeats one photo sees the
 * second. Run it as deployed and with glibc's defaults:
 *
 *   env MALLOC_MMAP_THRESHOLD_=131072 node --import tsx bench/recognizer-new-widths.ts
 *   node --import tsx bench/recognizer-new-widths.ts
 *
 * One intra-op thread (as served), 1×3×48×W for W = 1000, 1008, … 1192 (25 widths), each run twice
 * in a row; medians. The int8 file is the one `precision: int8` built into the cache folder (start
 * the server once first); without it only float is measured.
 */
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { defaultCacheDir } from '../src/quantize/int8-cache.js';
import { OCR_ASSETS } from '../test/helpers/ocr.js';

const FLOAT = path.join(OCR_ASSETS, 'ch_PP-OCRv4_rec_infer.onnx');
const cache = path.join(defaultCacheDir(), 'int8');
const int8 = existsSync(cache)
  ? readdirSync(cache).find((file) => file.startsWith('ch_PP-OCRv4_rec_infer.int8-') && file.endsWith('.onnx'))
  : undefined;
const models: Array<[string, string]> = [['float', FLOAT]];
if (int8 !== undefined) models.push(['int8', path.join(cache, int8)]);
else console.log(`no int8 recognizer in ${cache}: start the server once to build it; float only`);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
const line = (width: number) =>
  new ort.Tensor('float32', new Float32Array(3 * 48 * width).fill(0.3), [1, 3, 48, width]);

console.log(`MALLOC_MMAP_THRESHOLD_ ${process.env.MALLOC_MMAP_THRESHOLD_ ?? 'glibc default'}\n`);
console.log('| model | arena | new width ms | same width again ms |\n|---|---|---|---|');
for (const [label, file] of models) {
  for (const arena of [true, false]) {
    const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, enableCpuMemArena: arena });
    await session.run({ x: line(320) });
    const first: number[] = [];
    const again: number[] = [];
    for (let width = 1000; width < 1200; width += 8) {
      for (const times of [first, again]) {
        const start = performance.now();
        await session.run({ x: line(width) });
        times.push(performance.now() - start);
      }
    }
    await session.release();
    console.log(`| ${label} | ${arena ? 'on' : 'off'} | ${median(first).toFixed(0)} | ${median(again).toFixed(0)} |`);
  }
}
const [load1, load5] = os.loadavg();
console.log(`\nload average ${load1.toFixed(2)} / ${load5.toFixed(2)} (1 / 5 min) at the end, Node ${process.version}`);

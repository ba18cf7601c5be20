/**
 * Does an int8 text-recognizer read rendered lines as the float one does, alone and batched, and
 * how much faster is it? Builds int8 variants of the npm package's recognizer with the project's
 * quantizer (the settings `precision: int8` uses, calibrated on models/text-recognizer/calibration/),
 * one per exclusion list, then reads fourteen rendered lines (words next to numbers, where int8 first
 * drops spaces) alone, in threes and all fourteen in one tensor padded to the widest, and times one
 * 1×3×48×1200 line, float and int8 interleaved (15 runs each, one intra-op thread: as served).
 *
 *   flock /tmp/onnx-serve-heavy.lock node --import tsx bench/recognizer-int8-lines.ts
 *
 * Rows: every conv and MatMul int8; the depthwise convolutions left float, on the graph as exported
 * and on the simplified graph (scales and shifts folded into the convolutions, hard-swish as
 * HardSigmoid × x); the exclusion list of models/text-recognizer/config.yaml (the depthwise
 * convolutions and the neck's MatMuls), simplified.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { parse } from 'yaml';
import { quantizeOptionsOf } from '../src/quantize/int8-cache.js';
import { quantizeModel } from '../src/quantize/quantize.js';
import { ctcDecode, OCR_ASSETS, recognizerInput, renderTextLine } from '../test/helpers/ocr.js';

const FLOAT = path.join(OCR_ASSETS, 'ch_PP-OCRv4_rec_infer.onnx');
const CONFIG = path.resolve('models/text-recognizer/config.yaml');
const config = parse(readFileSync(CONFIG, 'utf8')) as { quantization?: { exclude?: string[] } };
const configured = config.quantization?.exclude ?? [];
const depthwise = configured.filter((name) => !name.includes('MatMul'));
/** Label, nodes left in float, whether the graph is simplified first (src/quantize/simplify.ts). */
const VARIANTS: Array<[string, string[], boolean]> = [
  ['every conv and MatMul int8', [], true],
  [`graph as exported, depthwise convs float (${depthwise.length})`, depthwise, false],
  ['simplified, depthwise convs float', depthwise, true],
  [`simplified, config.yaml's exclude (${configured.length})`, configured, true],
  ['simplified, depthwise convs and every MatMul float', [...depthwise, 'MatMul'], true],
];
const TEXTS = [
  'Alpha 101',
  'Bravo 202',
  'Charlie 303',
  'Delta 404 items',
  'Echo 5 and 6',
  'Foxtrot 77 Golf 88',
  'Invoice 2026-0042',
  'Total due: 1,234.56 EUR',
  'Ship to 17 Baker Street',
  'Order 98765 confirmed',
  'Page 3 of 7',
  'alpha 42',
  'Baker Street',
  'Hello World 2026',
];
type Line = { shape: number[]; data: Float32Array };
const lines: Line[] = await Promise.all(TEXTS.map(async (text) => recognizerInput(await renderTextLine(text))));
const SESSION: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1 };

/** Lines in one N×3×48×W tensor, each padded with zeros to the widest (at least 320), as the pipeline pads. */
function batchOf(items: Line[], minWidth = 320): ort.Tensor {
  const width = Math.max(minWidth, ...items.map((item) => item.shape[3]));
  const data = new Float32Array(items.length * 3 * 48 * width);
  items.forEach((item, n) => {
    const own = item.shape[3];
    for (let row = 0; row < 3 * 48; row++) {
      data.set(item.data.subarray(row * own, (row + 1) * own), (n * 3 * 48 + row) * width);
    }
  });
  return new ort.Tensor('float32', data, [items.length, 3, 48, width]);
}

async function read(session: ort.InferenceSession, items: Line[]): Promise<string[]> {
  const output = (await session.run({ x: batchOf(items) }))[session.outputNames[0]];
  const [n, steps, classes] = output.dims as number[];
  const data = output.data as Float32Array;
  const size = steps * classes;
  return Array.from({ length: n }, (_, i) => ctcDecode(data.subarray(i * size, (i + 1) * size), steps, classes).trim());
}

/** The lines read wrong, alone / in threes / all together. */
async function misreads(session: ort.InferenceSession): Promise<Record<'alone' | 'threes' | 'together', string[]>> {
  const wrong = (texts: string[]) => texts.filter((text, i) => text !== TEXTS[i]).map((text) => JSON.stringify(text));
  const alone = (await Promise.all(lines.map((line) => read(session, [line])))).flat();
  const threes: string[] = [];
  for (let i = 0; i < lines.length; i += 3) threes.push(...(await read(session, lines.slice(i, i + 3))));
  return { alone: wrong(alone), threes: wrong(threes), together: wrong(await read(session, lines)) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
const scratch = await mkdtemp(path.join(os.tmpdir(), 'onnx-serve-bench-rec-int8-'));
try {
  const float = await ort.InferenceSession.create(FLOAT, SESSION);
  const floatMisreads = await misreads(float);
  console.log(
    `float: misread alone ${floatMisreads.alone.length}, in threes ${floatMisreads.threes.length}, together ${floatMisreads.together.length}`,
  );
  console.log(
    `\n| int8 variant | build s | misread alone / in threes / all 14 together | 1×3×48×1200 float → int8 ms | speed-up |`,
  );
  console.log('|---|---|---|---|---|');
  const wide = batchOf([lines[5]], 1200);
  for (const [index, [label, exclude, simplify]] of VARIANTS.entries()) {
    const file = path.join(scratch, `rec-${index}.onnx`);
    const report = await quantizeModel(FLOAT, file, {
      ...quantizeOptionsOf({ exclude, simplify }),
      calibration: path.resolve('models/text-recognizer/calibration'),
      config: CONFIG,
    });
    const int8 = await ort.InferenceSession.create(file, SESSION);
    const wrong = await misreads(int8);
    const floatMs: number[] = [];
    const int8Ms: number[] = [];
    for (let i = 0; i < 15; i++) {
      let start = performance.now();
      await float.run({ x: wide });
      floatMs.push(performance.now() - start);
      start = performance.now();
      await int8.run({ x: wide });
      int8Ms.push(performance.now() - start);
    }
    await int8.release();
    const cells = [wrong.alone, wrong.threes, wrong.together].map((w) =>
      w.length === 0 ? '0' : `${w.length} (${w.join(', ')})`,
    );
    console.log(
      `| ${label} | ${report.seconds.toFixed(1)} | ${cells.join(' / ')} | ${median(floatMs).toFixed(1)} → ${median(int8Ms).toFixed(1)} | ${(median(floatMs) / median(int8Ms)).toFixed(2)}× |`,
    );
  }
  await float.release();
} finally {
  await rm(scratch, { recursive: true, force: true });
}
const [load1, load5] = os.loadavg();
console.log(
  `\nload average ${load1.toFixed(2)} / ${load5.toFixed(2)} (1 / 5 min) at the end, ${os.cpus().length} cores, Node ${process.version}`,
);

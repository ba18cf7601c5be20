/**
 * End-to-end latency of the `ocr` pipeline for a 640×480 document photo (JPEG), and the share of
 * each stage the server reports (decode, preprocess, queue, infer, postprocess). Sequential requests
 * over loopback, so the figures are latency, not throughput.
 *
 * Then, for each photo of bench/ocr-set/ named in `photos`, where its time goes inside the pipeline
 * (in process, `runs` warm runs, medians): decode, each step's wall-clock time with the stages of
 * its model requests, and the recognizer's batches (crops, padded tensor width, milliseconds).
 *
 *   node --import tsx bench/ocr-pipeline.ts [requests=30] [photos=book-page,page-sideways-270] [runs=3] [overrides]
 *
 * `overrides` is JSON merged into the `ocr` pipeline's config for the profile, e.g.
 * '{"recognizer_batch_columns":1e9}' to profile without the column cap.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import sharp from 'sharp';
import type { PipelineConfig } from '../src/config/processing-config.js';
import { percentileOf } from '../src/observability/percentile.js';
import { decodeImage } from '../src/processing/image-decode.js';
import { noTime } from '../src/processing/image-model.js';
import { runOcrPipeline, type OcrProfile, type OcrStep } from '../src/processing/pipeline.js';
import { startServer } from '../src/server/start.js';
import { characterErrorRate } from '../test/helpers/ocr-metrics.js';
import { renderDocument } from '../test/helpers/ocr.js';

const requests = Number(process.argv[2] ?? 30);
const photos = (process.argv[3] ?? 'book-page,page-sideways-270').split(',').filter((name) => name !== '');
const runs = Number(process.argv[4] ?? 3);
const overrides = JSON.parse(process.argv[5] ?? '{}') as Partial<PipelineConfig>;
const here = path.dirname(fileURLToPath(import.meta.url));
const truth = JSON.parse(readFileSync(path.join(here, 'ocr-set', 'truth.json'), 'utf8')) as Record<string, string[]>;
const WARMUP = 3;

const { png } = await renderDocument(640, 480, [
  { text: 'Invoice 2026-0042', x: 40, y: 70 },
  { text: 'Total due: 1,234.56 EUR', x: 40, y: 150 },
  { text: 'Ship to 17 Baker Street', x: 40, y: 230 },
  { text: 'Order 98765 confirmed', x: 60, y: 330 },
  { text: 'Page 3 of 7', x: 420, y: 430 },
]);
// Closer to a photo than a clean render: off-white paper, grey ink, JPEG.
const photo = await sharp(png).linear(0.9, 12).jpeg({ quality: 85 }).toBuffer();

const server = await startServer({ port: 0, logger: pino({ level: 'error' }) });
const stages = ['decode', 'preprocess', 'queue', 'infer', 'postprocess'] as const;
const samples: Array<Record<string, number>> = [];
const profiles = new Map<string, Array<OcrProfile & { decode: number; total: number; lines: number; cer: number }>>();
try {
  for (let i = 0; i < (requests > 0 ? WARMUP + requests : 0); i++) {
    const start = performance.now();
    const response = await fetch(`${server.url}/v2/models/ocr/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: photo,
    });
    const body = (await response.json()) as {
      results: Array<Array<{ text: string }>>;
      timings_ms: Record<string, number>;
    };
    const endToEnd = performance.now() - start;
    if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${JSON.stringify(body)}`);
    if (i === 0) console.log(`lines read: ${body.results[0].map((l) => JSON.stringify(l.text)).join(', ')}`);
    if (i >= WARMUP) samples.push({ ...body.timings_ms, end_to_end: endToEnd });
  }
  const pipeline = { ...server.registry.resolve('ocr').spec.config.pipeline!, ...overrides };
  for (let run = 0; run <= runs; run++) {
    // Interleaved photo by photo, so that a busy moment of the machine spreads over all of them.
    for (const name of photos) {
      const bytes = readFileSync(path.join(here, 'ocr-set', `${name}.jpg`));
      const profile: OcrProfile = { steps: [], recognizerBatches: [] };
      const start = performance.now();
      const image = await decodeImage(bytes, name, 1e8);
      const decode = performance.now() - start;
      const [lines] = await runOcrPipeline(server.registry, pipeline, [image], noTime(), profile);
      const total = performance.now() - start;
      const cer = characterErrorRate(
        lines.map((line) => line.text),
        truth[name],
      );
      // The first round warms up.
      if (run > 0)
        profiles.set(name, [...(profiles.get(name) ?? []), { ...profile, decode, total, cer, lines: lines.length }]);
    }
  }
  if (photos.length > 0) {
    const mmapThreshold = process.env.MALLOC_MMAP_THRESHOLD_ ?? 'glibc default';
    console.log(
      `RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB after the profile runs (MALLOC_MMAP_THRESHOLD_ ${mmapThreshold})`,
    );
  }
} finally {
  await server.close();
}

const median = (values: number[]) => percentileOf(values, 50);
const round = (ms: number) => ms.toFixed(0);
for (const [name, runsOf] of profiles) {
  const [load1] = os.loadavg();
  console.log(
    `\n### ${name}: ${runsOf[0].lines} lines, CER ${(runsOf[0].cer * 100).toFixed(1)} %, ${runs} warm runs, medians (load average ${load1.toFixed(2)} at the end)\n`,
  );
  console.log(
    '| step | wall ms | preprocess | queue | infer (summed over instances) | postprocess |\n|---|---|---|---|---|---|',
  );
  console.log(`| decode | ${round(median(runsOf.map((r) => r.decode)))} | | | | |`);
  const steps = [...new Set(runsOf[0].steps.map((s) => s.step))] as OcrStep[];
  for (const step of steps) {
    const of = runsOf.map((r) => r.steps.find((s) => s.step === step)!);
    const stage = (key: 'preprocess' | 'queue' | 'infer' | 'postprocess') =>
      round(median(of.map((s) => s.stages[key])));
    console.log(
      `| ${step} | ${round(median(of.map((s) => s.ms)))} | ${stage('preprocess')} | ${stage('queue')} | ${stage('infer')} | ${stage('postprocess')} |`,
    );
  }
  console.log(`| **total** | ${round(median(runsOf.map((r) => r.total)))} | | | | |`);
  // The batches of the median run, in the order they finished.
  const middle = [...runsOf].sort((a, b) => a.total - b.total)[runsOf.length >> 1];
  const batches = middle.recognizerBatches.map((b) => `${b.crops}×${b.width} ${round(b.ms)} ms`);
  console.log(`\nrecognizer batches of the median run (crops × padded width, send to answer): ${batches.join(', ')}`);
}

if (samples.length === 0) process.exit(0);
const p50 = median(samples.map((s) => s.end_to_end));
console.log(
  `\n${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${requests} requests after ${WARMUP} warmup`,
);
console.log(`\n| stage | p50 ms | share of end-to-end (mean of per-request shares) |\n|---|---|---|`);
for (const stage of [...stages, 'total'] as const) {
  const share = samples.reduce((sum, s) => sum + s[stage] / s.end_to_end, 0) / samples.length;
  console.log(
    `| ${stage === 'total' ? 'server total' : stage} | ${median(samples.map((s) => s[stage])).toFixed(1)} | ${(share * 100).toFixed(1)} % |`,
  );
}
console.log(`| end-to-end (client) | ${p50.toFixed(1)} | 100 % |`);

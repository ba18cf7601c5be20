/**
 * End-to-end latency of the `ocr` pipeline for a 640×480 document photo (JPEG), and the share of
 * each stage the server reports (decode, preprocess, queue, infer, postprocess). Sequential requests
 * over loopback, so the figures are latency, not throughput.
 *
 *   node --import tsx bench/ocr-pipeline.ts [requests=30]
 */
import os from 'node:os';
import { pino } from 'pino';
import sharp from 'sharp';
import { percentileOf } from '../src/observability/percentile.js';
import { startServer } from '../src/server/start.js';
import { renderDocument } from '../test/helpers/ocr.js';

const requests = Number(process.argv[2] ?? 30);
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
try {
  for (let i = 0; i < WARMUP + requests; i++) {
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
} finally {
  await server.close();
}

const median = (values: number[]) => percentileOf(values, 50);
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

/**
 * How the `ocr` pipeline's recognizer batching and the recognizer's instances × threads trade off,
 * measured side by side: one server per instances × threads layout (a copy of the default
 * repository with models/text-recognizer/config.yaml changed), and in each, the pipeline run on
 * photos of bench/ocr-set/ with each recognizer_batch_size × recognizer_batch_columns in turn,
 * interleaved. Also the server's RSS when ready and after the runs.
 *
 *   flock /tmp/onnx-serve-heavy.lock node --import tsx bench/ocr-batching.ts [runs=3] [layouts=all]
 *
 * `layouts` picks by index (e.g. 0,1) when not all are wanted.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { decodeImage } from '../src/processing/image-decode.js';
import { noTime } from '../src/processing/image-model.js';
import { runOcrPipeline } from '../src/processing/pipeline.js';
import { DEFAULT_MODEL_REPOSITORY, startServer } from '../src/server/start.js';

const runs = Number(process.argv[2] ?? 3);
const here = path.dirname(fileURLToPath(import.meta.url));
const PHOTOS = ['book-page', 'receipt', 'page-sideways-270'];
/**
 * Crops per batch × most columns per batch. (One tensor for the whole page, as the pipeline ran
 * before batching, was 3–4× slower than batches of 6: bench/RESULTS.md.)
 */
const PLANS: Array<{ size: number; columns?: number }> = [
  { size: 6 },
  { size: 6, columns: 2048 },
  { size: 6, columns: 1280 },
  { size: 1 },
];
const planLabel = ({ size, columns }: { size: number; columns?: number }) =>
  `batch ${size}${columns === undefined ? '' : `, ≤ ${columns} cols`}`;
const ALL_LAYOUTS: Array<{ label: string; session: string; instances: number }> = [
  {
    label: '2 instances × 1 thread, arena off',
    session: 'intra_op_threads: 1\n  enable_cpu_mem_arena: false',
    instances: 2,
  },
  {
    label: '1 instance × 2 threads, arena off',
    session: 'intra_op_threads: 2\n  enable_cpu_mem_arena: false',
    instances: 1,
  },
  {
    label: '2 instances × 1 thread, arena on',
    session: 'intra_op_threads: 1\n  enable_cpu_mem_arena: true',
    instances: 2,
  },
];
const LAYOUTS =
  process.argv[3] === undefined ? ALL_LAYOUTS : process.argv[3].split(',').map((i) => ALL_LAYOUTS[Number(i)]);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const rssMb = () => process.memoryUsage().rss / 2 ** 20;

const images = await Promise.all(
  PHOTOS.map((name) => decodeImage(readFileSync(path.join(here, 'ocr-set', `${name}.jpg`)), name, 1e8)),
);
console.log(`${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${runs} runs each`);
for (const layout of LAYOUTS) {
  // Inside the project, so that the configs' `source: {package}` finds node_modules.
  const repository = mkdtempSync(path.join(here, '.ocr-batching-'));
  cpSync(DEFAULT_MODEL_REPOSITORY, repository, { recursive: true });
  const configFile = path.join(repository, 'text-recognizer', 'config.yaml');
  const config = readFileSync(configFile, 'utf8')
    .replace(/^session:\n( {2}.*\n)+/m, '')
    .replace(/^instances:.*\n/m, '');
  writeFileSync(configFile, `${config}\ninstances: ${layout.instances}\nsession:\n  ${layout.session}\n`);
  const server = await startServer({
    port: 0,
    host: '127.0.0.1',
    grpcPort: 0,
    modelRepository: repository,
    logger: pino({ level: 'error' }),
  });
  try {
    const ready = rssMb();
    const pipeline = server.registry.resolve('ocr').spec.config.pipeline!;
    const times = new Map<string, number[]>();
    for (let run = 0; run < runs + 1; run++) {
      for (const [p, image] of images.entries()) {
        for (const plan of PLANS) {
          const start = performance.now();
          const planned = {
            ...pipeline,
            recognizer_batch_size: plan.size,
            recognizer_batch_columns: plan.columns ?? Infinity,
          };
          await runOcrPipeline(server.registry, planned, [image], noTime());
          const key = `${PHOTOS[p]}\u0000${planLabel(plan)}`;
          if (run > 0) times.set(key, [...(times.get(key) ?? []), performance.now() - start]);
        }
      }
    }
    const [load1] = os.loadavg();
    console.log(`\n### ${layout.label} (load average ${load1.toFixed(2)})\n`);
    console.log(`| photo | ${PLANS.map(planLabel).join(' | ')} |`);
    console.log(`|---|${PLANS.map(() => '---').join('|')}|`);
    for (const name of PHOTOS) {
      console.log(
        `| ${name} | ${PLANS.map((plan) => `${median(times.get(`${name}\u0000${planLabel(plan)}`)!).toFixed(0)} ms`).join(' | ')} |`,
      );
    }
    console.log(`\nRSS ${ready.toFixed(0)} MB ready, ${rssMb().toFixed(0)} MB after the runs`);
  } finally {
    await server.close();
    rmSync(repository, { recursive: true, force: true });
  }
}

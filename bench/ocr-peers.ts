/**
 * onnx-serve's `ocr` pipeline side by side with @gutenye/ocr-node (the same PP-OCRv4 models on
 * onnxruntime-node, in this process) and Debian's `tesseract` CLI (default threads, and once more
 * with OMP_THREAD_LIMIT=1), on the photo set in bench/ocr-set/ (regenerate it with
 * bench/ocr-set/generate.ts). Interleaved image by image: every tool reads an image once to warm
 * up, then `runs` times; the figures are the warm median. Prints per image and overall character
 * error rate, word accuracy and latency, and the server's RSS when ready, after the set, and after
 * `densePages` more requests with the densest page.
 *
 *   flock /tmp/onnx-serve-heavy.lock node --import tsx bench/ocr-peers.ts [runs=3] [densePages=50]
 *
 * Tesseract: apt-get install tesseract-ocr tesseract-ocr-eng (skipped, with a note, when missing).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { characterErrorRate, editDistance, normalizeText, wordAccuracy } from '../test/helpers/ocr-metrics.js';

const runs = Number(process.argv[2] ?? 3);
const densePages = Number(process.argv[3] ?? 50);
const here = path.dirname(fileURLToPath(import.meta.url));
const setDir = path.join(here, 'ocr-set');
const truth = JSON.parse(readFileSync(path.join(setDir, 'truth.json'), 'utf8')) as Record<string, string[]>;
const names = Object.keys(truth);

type Reader = (file: string, bytes: Buffer) => Promise<string[]>;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`onnx-serve exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} was not ready within 120 s`);
}

const port = await freePort();
const server = spawn(
  process.execPath,
  ['--import', 'tsx', 'src/cli/index.ts', 'serve', '--port', String(port), '--grpc-port', '0', '--log-level', 'warn'],
  // As deployed (deploy/Dockerfile, docs/deploy.md): freed tensors go back to the system.
  { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' } },
);
server.on('error', (error) => console.error(`onnx-serve: ${error.message}`));
const base = `http://127.0.0.1:${port}`;

const onnxServe: Reader = async (file, bytes) => {
  const response = await fetch(`${base}/v2/models/ocr/predict`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: bytes,
  });
  const body = (await response.json()) as { results: Array<Array<{ text: string }>>; error?: string };
  if (response.status !== 200) throw new Error(`${file}: HTTP ${response.status} ${body.error}`);
  return body.results[0].map((line) => line.text);
};

const { default: GutenOcr } = await import('@gutenye/ocr-node');
const guten = await GutenOcr.create();
const ocrNode: Reader = async (file) => {
  const lines = (await guten.detect(file)) as Array<{ text: string }>;
  return lines.map((line) => line.text);
};

const tesseractFound = spawnSync('tesseract', ['--version']).status === 0;
const tesseract =
  (threads?: number): Reader =>
  (file) =>
    new Promise((resolve, reject) => {
      const env = threads === undefined ? process.env : { ...process.env, OMP_THREAD_LIMIT: String(threads) };
      const child = spawn('tesseract', [file, 'stdout', '-l', 'eng'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolve(out.split('\n').filter((l) => l.trim() !== '')) : reject(new Error(`tesseract ${code}`)),
      );
    });

const tools: Array<[string, Reader]> = [
  ['onnx-serve', onnxServe],
  ['ocr-node', ocrNode],
];
if (tesseractFound) tools.push(['tesseract', tesseract()], ['tesseract 1 thread', tesseract(1)]);
else console.log('tesseract not found: apt-get install tesseract-ocr tesseract-ocr-eng (left out of this run)');

interface Score {
  cer: number;
  words: number;
  ms: number;
  edits: number;
  chars: number;
  text: string;
}
const scores = new Map<string, Map<string, Score>>(tools.map(([tool]) => [tool, new Map()]));

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

try {
  await waitReady(`${base}/v2/health/ready`, server);
  const rssReady = rssMb(server.pid!);
  for (const name of names) {
    const file = path.join(setDir, `${name}.jpg`);
    const bytes = readFileSync(file);
    for (const [tool, read] of tools) {
      let lines = await read(file, bytes);
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const start = performance.now();
        lines = await read(file, bytes);
        times.push(performance.now() - start);
      }
      const reference = normalizeText(truth[name]);
      scores.get(tool)!.set(name, {
        cer: characterErrorRate(lines, truth[name]),
        words: wordAccuracy(lines, truth[name]),
        ms: median(times),
        edits: editDistance(normalizeText(lines), reference),
        chars: reference.length,
        text: normalizeText(lines),
      });
    }
  }
  const rssAfterSet = rssMb(server.pid!);
  const dense = readFileSync(path.join(setDir, 'book-page.jpg'));
  for (let i = 0; i < densePages; i++) await onnxServe('book-page.jpg', dense);
  const rssAfterDense = rssMb(server.pid!);

  const [load1, load5] = os.loadavg();
  console.log(
    `\n${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${runs} warm runs per image per tool, ` +
      `load average ${load1.toFixed(2)} / ${load5.toFixed(2)} (1 / 5 min) at the end`,
  );
  const toolNames = tools.map(([tool]) => tool);
  console.log(`\n| image | ${toolNames.map((t) => `${t} CER / words / ms`).join(' | ')} |`);
  console.log(`|---|${toolNames.map(() => '---').join('|')}|`);
  for (const name of names) {
    const cells = toolNames.map((tool) => {
      const s = scores.get(tool)!.get(name)!;
      return `${(s.cer * 100).toFixed(1)} % / ${(s.words * 100).toFixed(0)} % / ${s.ms.toFixed(0)}`;
    });
    console.log(`| ${name} | ${cells.join(' | ')} |`);
  }
  const overall = toolNames.map((tool) => {
    const all = [...scores.get(tool)!.values()];
    const cer = all.reduce((sum, s) => sum + s.edits, 0) / all.reduce((sum, s) => sum + s.chars, 0);
    const words = all.reduce((sum, s) => sum + s.words, 0) / all.length;
    return `${(cer * 100).toFixed(1)} % / ${(words * 100).toFixed(0)} % / ${median(all.map((s) => s.ms)).toFixed(0)}`;
  });
  console.log(
    `| **overall** (CER over all characters, mean word accuracy, median of medians) | ${overall.join(' | ')} |`,
  );
  console.log(
    `\nonnx-serve RSS: ${rssReady.toFixed(0)} MB ready, ${rssAfterSet.toFixed(0)} MB after the set, ` +
      `${rssAfterDense.toFixed(0)} MB after ${densePages} more book pages`,
  );
  if (process.env.OCR_PEERS_SHOW_TEXT !== undefined) {
    for (const name of names) {
      console.log(`\n## ${name}\ntruth: ${normalizeText(truth[name])}`);
      for (const tool of toolNames) console.log(`${tool}: ${scores.get(tool)!.get(name)!.text}`);
    }
  }
} finally {
  server.kill('SIGTERM');
}

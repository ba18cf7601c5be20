/**
 * Float vs int8, side by side in one run: for mobilenet_v3_small and resnet50 (torchvision, random
 * weights, exported with `convert`) and the PP-OCR text detector and recognizer, quantize (static,
 * min-max, the defaults) on calibration inputs, then on held-out inputs: file size, output cosine
 * and top-1 agreement (character error rate on rendered text lines for the recognizer), and the
 * time inside session.run at batch 1 (p50) and per item at the best batch, float and int8 runs
 * interleaved so that both see the same machine load.
 *
 *   flock /tmp/onnx-serve-heavy.lock node --import tsx bench/quantize.ts [--work DIR] [--write]
 *
 * --work keeps the exported torchvision models between runs (default /tmp/onnx-serve-bench-quantize);
 * --write replaces the quantize section of bench/RESULTS.md.
 */
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as prettier from 'prettier';
import sharp from 'sharp';
import { runExportHelper, type ExportJob } from '../src/convert/convert.js';
import { findPython } from '../src/convert/python.js';
import type { NamedTensor } from '../src/protocol/datatypes.js';
import { quantizeModel, type QuantizeOptions, type QuantizeReport } from '../src/quantize/quantize.js';
import { readSamples } from '../src/quantize/samples.js';
import { withModelPool } from '../src/runtime/model-pool.js';
import { compareOutputs, type OutputAgreement } from '../src/verify/agreement.js';
import { ctcDecode, OCR_ASSETS, renderDocument, renderTextLine } from '../test/helpers/ocr.js';
import { editDistance } from '../test/helpers/ocr-metrics.js';

const args = process.argv.slice(2);
const work = path.resolve(
  args.includes('--work') ? args[args.indexOf('--work') + 1] : '/tmp/onnx-serve-bench-quantize',
);
const write = args.includes('--write');
const HELD_OUT = 10;

const CALIBRATION_LINES = [
  'Invoice 2024-117',
  'Total due: 42.50 EUR',
  'Ship to 17 Baker Street',
  'The quick brown fox',
  'jumps over the lazy dog',
  'Order #88213 confirmed',
  'Phone +44 20 7946 0958',
  'Batch size and latency',
  'Quantized models run faster',
  'Hello, world!',
  'ONNX Runtime on Node.js',
  'Meeting at 10:30 tomorrow',
];
const HELD_OUT_LINES = [
  'Receipt no. 5521',
  'Subtotal 18.90 USD',
  'Deliver before Friday',
  'Pack my box with five dozen',
  'liquor jugs, said the clerk',
  'Account 4471-22 closed',
  'Room 214, second floor',
  'Please sign and return',
  'Warranty: 24 months',
  'Thank you for your order',
  'Keep away from heat',
  'Serial KX-9902-B',
];

interface Row {
  model: string;
  input: string;
  report: QuantizeReport;
  agreement: OutputAgreement[];
  heldOut: string;
  floatP50: number;
  int8P50: number;
  bestBatch: number;
  floatPerItem: number;
  int8PerItem: number;
  cer?: { float: number; int8: number; lines: number };
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const started = { at: new Date().toISOString(), load: os.loadavg() };
  await exportTorchvision();
  const rows: Row[] = [];
  rows.push(await imageClassifier('mobilenet_v3_small', 'image 1×3×224×224', 40, 4));
  rows.push(await imageClassifier('resnet50', 'image 1×3×224×224', 16, 4));
  rows.push(await detector());
  rows.push(await recognizer('text-recognizer', {}));
  // The settings that kept it closest in trials (docs/convert.md): tails cut, full 8-bit weights.
  rows.push(
    await recognizer('text-recognizer (percentile 99.99, 8-bit weights)', {
      method: 'percentile',
      percentile: 99.99,
      reduceRange: false,
    }),
  );
  const finished = { at: new Date().toISOString(), load: os.loadavg() };
  const table = render(rows, started, finished);
  console.log(table);
  if (write) await writeResults(table);
}

async function exportTorchvision(): Promise<void> {
  const jobs: ExportJob[] = [];
  for (const [name, samples] of [
    ['mobilenet_v3_small', 40],
    ['resnet50', 110],
  ] as const) {
    const output = path.join(work, name, 'model.onnx');
    if (existsSync(path.join(work, name, `test_data_set_${samples - 1}`))) continue;
    jobs.push({
      source: `torchvision.models:${name}`,
      kwargs: { weights: null },
      inputs: [{ name: 'image', shape: [1, 3, 224, 224], dtype: 'float32' }],
      output_names: ['logits'],
      output,
      samples,
    });
  }
  if (jobs.length === 0) return;
  const python = await findPython();
  for (const result of await runExportHelper(python.path, jobs)) {
    if (!result.ok) throw new Error(`export failed: ${JSON.stringify(result)}`);
  }
}

/** Calibration and held-out folders with copies of the model's test data sets (the last HELD_OUT held out). */
async function splitTestData(name: string): Promise<{ calibration: string; heldOut: string }> {
  const dir = path.join(work, name);
  const sets = (await readdir(dir)).filter((entry) => entry.startsWith('test_data_set_'));
  sets.sort((a, b) => Number(a.split('_').pop()) - Number(b.split('_').pop()));
  const calibration = path.join(work, `${name}-calibration`);
  const heldOut = path.join(work, `${name}-held-out`);
  for (const [folder, chosen] of [
    [calibration, sets.slice(0, -HELD_OUT)],
    [heldOut, sets.slice(-HELD_OUT)],
  ] as const) {
    await rm(folder, { recursive: true, force: true });
    await mkdir(folder);
    for (const [i, set] of chosen.entries()) {
      await cp(path.join(dir, set), path.join(folder, `test_data_set_${i}`), { recursive: true });
    }
  }
  return { calibration, heldOut };
}

async function imageClassifier(name: string, input: string, runs: number, batch: number): Promise<Row> {
  const { calibration, heldOut } = await splitTestData(name);
  const model = path.join(work, name, 'model.onnx');
  const int8 = path.join(work, `${name}-int8`, 'model.onnx');
  const report = await quantize(model, int8, calibration);
  const signature = await withModelPool(model, async (_pool, signature) => signature);
  const held = await readSamples(heldOut, model, signature);
  const agreement = await compareOutputs(model, int8, held.samples);
  return {
    model: name,
    input,
    report,
    agreement,
    heldOut: held.description,
    ...(await time(model, int8, held.samples[0], runs, batch)),
  };
}

async function detector(): Promise<Row> {
  const model = await copyOcrModel('text-detector', 'ch_PP-OCRv4_det_infer.onnx');
  const pages = async (dir: string, lines: string[]) => {
    await mkdir(dir, { recursive: true });
    for (let page = 0; page < lines.length / 4; page++) {
      const text = lines
        .slice(page * 4, page * 4 + 4)
        .map((line, i) => ({ text: line, x: 30 + 10 * i, y: 120 + 120 * i }));
      const { png } = await renderDocument(640, 640, text);
      await writeFile(path.join(dir, `page${page}.png`), await sharp(png).jpeg({ quality: 90 }).toBuffer());
    }
  };
  const calibration = path.join(work, 'detector-calibration');
  const heldOut = path.join(work, 'detector-held-out');
  await pages(calibration, CALIBRATION_LINES);
  await pages(heldOut, HELD_OUT_LINES);
  const config = path.resolve('models/text-detector/config.yaml');
  const int8 = path.join(work, 'text-detector-int8', 'model.onnx');
  const report = await quantize(model, int8, calibration, config);
  const signature = await withModelPool(model, async (_pool, signature) => signature);
  const held = await readSamples(heldOut, model, signature, config);
  const agreement = await compareOutputs(model, int8, held.samples);
  return {
    model: 'text-detector',
    input: 'page 1×3×640×640',
    report,
    agreement,
    heldOut: held.description,
    ...(await time(model, int8, held.samples[0], 6, 2)),
  };
}

async function recognizer(label: string, settings: Partial<QuantizeOptions>): Promise<Row> {
  const model = await copyOcrModel('text-recognizer', 'ch_PP-OCRv4_rec_infer.onnx');
  const render = async (dir: string, lines: string[]) => {
    await mkdir(dir, { recursive: true });
    for (const [i, line] of lines.entries()) {
      await writeFile(path.join(dir, `line${String(i).padStart(2, '0')}.png`), await renderTextLine(line));
    }
  };
  const calibration = path.join(work, 'recognizer-calibration');
  const heldOut = path.join(work, 'recognizer-held-out');
  await render(calibration, CALIBRATION_LINES);
  await render(heldOut, HELD_OUT_LINES);
  const config = path.resolve('models/text-recognizer/config.yaml');
  const int8 = path.join(work, `text-recognizer-int8-${settings.method ?? 'minmax'}`, 'model.onnx');
  const report = await quantize(model, int8, calibration, config, settings);
  const signature = await withModelPool(model, async (_pool, signature) => signature);
  const held = await readSamples(heldOut, model, signature, config);
  const agreement = await compareOutputs(model, int8, held.samples);
  const cer = {
    float: await characterErrorRate(model, held.samples),
    int8: await characterErrorRate(int8, held.samples),
    lines: HELD_OUT_LINES.length,
  };
  // A 48×320 line (the config's min_width) is what most crops become.
  const line = held.samples.find((sample) => sample[0].shape[3] === 320) ?? held.samples[0];
  return {
    model: label,
    input: `line 1×3×48×${line[0].shape[3]}`,
    report,
    agreement,
    heldOut: held.description,
    cer,
    ...(await time(model, int8, line, 30, 4)),
  };
}

async function copyOcrModel(name: string, file: string): Promise<string> {
  const model = path.join(work, name, 'model.onnx');
  await mkdir(path.dirname(model), { recursive: true });
  await copyFile(path.join(OCR_ASSETS, file), model);
  return model;
}

async function quantize(
  model: string,
  output: string,
  calibration: string,
  config?: string,
  settings: Partial<QuantizeOptions> = {},
): Promise<QuantizeReport> {
  return quantizeModel(model, output, {
    mode: 'static',
    method: 'minmax',
    perChannel: true,
    reduceRange: true,
    exclude: [],
    calibration,
    config,
    maxSamples: 100,
    reportSamples: 0,
    ...settings,
  });
}

/** Character error rate in percent: edit distance over truth length, summed over the held-out lines. */
async function characterErrorRate(model: string, samples: NamedTensor[][]): Promise<number> {
  let edits = 0;
  let characters = 0;
  await withModelPool(model, async (pool) => {
    for (const [i, sample] of samples.entries()) {
      const { outputs } = await pool.run(
        sample.map((tensor) => ({ ...tensor, data: tensor.data.slice() }) as NamedTensor),
      );
      const [probabilities] = outputs;
      const text = ctcDecode(probabilities.data as Float32Array, probabilities.shape[1], probabilities.shape[2]);
      edits += editDistance(text, HELD_OUT_LINES[i]);
      characters += HELD_OUT_LINES[i].length;
    }
  });
  return (100 * edits) / characters;
}

/** session.run times, float and int8 alternating: p50 at batch 1, and per item at batch 1 and `batch`. */
async function time(model: string, int8: string, sample: NamedTensor[], runs: number, batch: number) {
  const batched = (size: number) =>
    sample.map((tensor) => {
      const data = new Float32Array(tensor.data.length * size);
      for (let i = 0; i < size; i++) data.set(tensor.data as Float32Array, i * tensor.data.length);
      return { ...tensor, shape: [size, ...tensor.shape.slice(1)], data } as NamedTensor;
    });
  return withModelPool(model, (floatPool) =>
    withModelPool(int8, async (int8Pool) => {
      const measure = async (size: number, count: number) => {
        const inputs = batched(size);
        const times: [number[], number[]] = [[], []];
        for (let i = 0; i < count + 2; i++) {
          for (const [k, pool] of [floatPool, int8Pool].entries()) {
            const { computeMs } = await pool.run(inputs.map((t) => ({ ...t, data: t.data.slice() }) as NamedTensor));
            if (i >= 2) times[k].push(computeMs);
          }
        }
        return times.map((list) => median(list) / size);
      };
      const [floatP50, int8P50] = await measure(1, runs);
      const [floatBatched, int8Batched] = await measure(batch, Math.max(3, Math.ceil(runs / batch)));
      const floatBest = Math.min(floatP50, floatBatched);
      const int8Best = Math.min(int8P50, int8Batched);
      return {
        floatP50,
        int8P50,
        bestBatch: int8Batched < int8P50 ? batch : 1,
        floatPerItem: floatBest,
        int8PerItem: int8Best,
      };
    }),
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function render(
  rows: Row[],
  started: { at: string; load: number[] },
  finished: { at: string; load: number[] },
): string {
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(', ');
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  const lines = [
    `Run ${started.at} → ${finished.at}; load average ${load(started.load)} at the start, ${load(finished.load)} at the end; ` +
      `${os.cpus().length} cores, onnxruntime-node default session settings (as \`serve\`), static QDQ, per-channel weights; min-max and 7-bit weights unless the row says otherwise.`,
    '',
    '| model | input | size float → int8 | batch-1 p50 float → int8 | speed-up | best per item float → int8 | cosine (held-out) | top-1 agree | quantize time (samples) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((row) => {
      const [output] = row.agreement;
      return (
        `| ${row.model} | ${row.input} | ${mb(row.report.before.fileSize)} → ${mb(row.report.after.fileSize)} | ` +
        `${row.floatP50.toFixed(2)} → ${row.int8P50.toFixed(2)} ms | **${(row.floatP50 / row.int8P50).toFixed(2)}×** | ` +
        `${row.floatPerItem.toFixed(2)} → ${row.int8PerItem.toFixed(2)} ms (int8 best at batch ${row.bestBatch}) | ` +
        `${output.cosine.toFixed(4)} | ${output.top1Agreement === undefined ? '-' : `${(output.top1Agreement * 100).toFixed(1)}%`} | ` +
        `${row.report.seconds.toFixed(1)} s (${row.report.calibration?.samples}) |`
      );
    }),
    '',
    ...rows
      .filter((row) => row.cer !== undefined)
      .map(
        (row) =>
          `${row.model}: character error rate on ${row.cer!.lines} held-out rendered lines: float ${row.cer!.float.toFixed(2)} %, int8 ${row.cer!.int8.toFixed(2)} %.`,
      ),
    ...rows.map((row) => `${row.model}: held out ${row.heldOut}; calibrated on ${row.report.calibration?.source}.`),
  ];
  return lines.join('\n');
}

async function writeResults(table: string): Promise<void> {
  const file = path.resolve('bench/RESULTS.md');
  const text = await readFile(file, 'utf8');
  const start = '<!-- quantize:start -->';
  const end = '<!-- quantize:end -->';
  const section = `${start}\n${table}\n${end}`;
  const next = text.includes(start)
    ? text.replace(new RegExp(`${start}[\\s\\S]*${end}`), section)
    : `${text.trimEnd()}\n\n## Float vs int8 (\`bench/quantize.ts\`, issue 19)\n\n${section}\n`;
  // Formatted as `npm run lint` expects (the table's columns aligned).
  await writeFile(file, await prettier.format(next, { ...(await prettier.resolveConfig(file)), filepath: file }));
}

await main();

/**
 * `onnx-serve quantize` and `verify --against` on the built CLI, with torch-exported models (a
 * residual CNN, a token MLP), the PP-OCR orientation classifier (opset 9, weights in Constant
 * nodes) calibrated on rendered text through its preprocess config, and a generated model with
 * nothing to quantize. Each int8 model is loaded in onnxruntime-node and compared with its float source.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { runExportHelper, type ExportJob } from '../../src/convert/convert.js';
import { findPython } from '../../src/convert/python.js';
import { readModelInfo } from '../../src/onnx/model-file.js';
import { withModelPool } from '../../src/runtime/model-pool.js';
import { passThroughModel } from '../helpers/onnx-builder.js';
import { OCR_ASSETS, renderTextLine } from '../helpers/ocr.js';

const CLI = path.resolve('dist/cli/index.js');
const MODELS = path.resolve('test/fixtures/torch_models.py');
const execute = promisify(execFile);

let dir: string;
let residual: string;
let mlp: string;

async function onnxServe(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execute(process.execPath, [CLI, ...args], { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

async function quantizeJson(...args: string[]) {
  const result = await onnxServe('quantize', '--json', ...args);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** Operators of the graph ONNX Runtime builds from a model (written by the session, as `optimize` does). */
async function fusedOperators(model: string): Promise<string[]> {
  const fused = path.join(dir, `fused-${path.basename(path.dirname(model))}.onnx`);
  await withModelPool(model, async () => undefined, { graphOptimizationLevel: 'extended', optimizedModelPath: fused });
  return (await readModelInfo(fused)).operatorHistogram.map((entry) => entry.op);
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-quantize-test-'));
  residual = path.join(dir, 'residual', 'model.onnx');
  mlp = path.join(dir, 'mlp', 'model.onnx');
  const python = await findPython();
  const jobs: ExportJob[] = [
    {
      source: `${MODELS}:residual_net`,
      inputs: [{ name: 'x', shape: [1, 3, 32, 32], dtype: 'float32' }],
      output_names: ['logits'],
      output: residual,
      samples: 12,
    },
    {
      source: `${MODELS}:token_mlp`,
      inputs: [{ name: 'x', shape: [1, 6, 32], dtype: 'float32' }],
      output_names: ['scores'],
      output: mlp,
      samples: 4,
    },
  ];
  const results = await runExportHelper(python.path, jobs);
  for (const result of results) assert.equal(result.ok, true, JSON.stringify(result));
  // Held-out inputs for verify --against: 8 stacked samples in a .npz, others than the test data sets.
  await execute(python.path, [
    '-c',
    `import numpy; numpy.random.seed(7)
numpy.savez_compressed("${dir}/held-out.npz", x=numpy.random.randn(8, 3, 32, 32).astype(numpy.float32))
numpy.save("${dir}/calibration.npy", numpy.random.randn(6, 3, 32, 32).astype(numpy.float32))`,
  ]);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('quantize (static QDQ)', () => {
  it('writes an int8 model that ONNX Runtime loads and fuses into integer kernels, close to the float one', async () => {
    const output = path.join(dir, 'residual-int8', 'model.onnx');
    const report = await quantizeJson(residual, '--output', output);
    assert.equal(report.mode, 'static');
    assert.deepEqual(report.quantizedOps, { Conv: 4, Add: 1, GlobalAveragePool: 1, Gemm: 1 });
    // stem ReLU, block ReLU, the ReLU after the residual Add, ReLU6 (Clip 0..6) of the head.
    assert.equal(report.foldedActivations, 4);
    assert.equal(report.calibration.samples, 12);
    assert.ok(report.sizeRatio < 0.65, `int8 weights should shrink the file, got ${report.sizeRatio}`);
    const [logits] = report.outputs;
    assert.equal(logits.name, 'logits');
    assert.ok(logits.cosine > 0.999, `cosine ${logits.cosine}`);
    assert.equal(logits.top1Agreement, 1);

    const info = await readModelInfo(output);
    const ops = new Map(info.operatorHistogram.map(({ op, count }) => [op, count]));
    assert.ok(ops.get('QuantizeLinear')! >= 6 && ops.get('DequantizeLinear')! >= 10, JSON.stringify([...ops]));
    assert.equal(ops.get('Relu'), undefined);
    assert.equal(JSON.parse(info.metadataProps['onnx_serve.quantize']).mode, 'static');

    const fused = await fusedOperators(output);
    for (const op of [
      'QLinearConv',
      'com.microsoft::QGemm',
      'com.microsoft::QLinearAdd',
      'com.microsoft::QLinearGlobalAveragePool',
    ]) {
      assert.ok(fused.includes(op), `${op} missing from ${fused.join(', ')}`);
    }
    assert.ok(!fused.includes('Conv'), 'no float Conv should be left after fusion');
  });

  it('reports the error each quantized node adds, one row per node, worst first', async () => {
    const report = await quantizeJson(residual, '--output', path.join(dir, 'residual-report', 'model.onnx'));
    const errors: { node: string; op: string; relativeError: number; addedError: number }[] = report.nodeErrors;
    assert.equal(errors.length, report.quantizedNodes);
    assert.ok(
      errors.every((row) => row.relativeError > 0 && row.relativeError < 0.1),
      JSON.stringify(errors),
    );
    assert.deepEqual(
      errors.map((row) => row.addedError),
      errors.map((row) => row.addedError).sort((a, b) => b - a),
    );
    const text = await onnxServe('quantize', residual, '--output', path.join(dir, 'residual-text', 'model.onnx'));
    assert.match(text.stdout, /Error each quantized node adds/);
    assert.match(text.stdout, new RegExp(errors[0].node.replaceAll('/', '\\/')));
  });

  it('leaves excluded op types and node names in float', async () => {
    const byType = await quantizeJson(
      residual,
      '--output',
      path.join(dir, 'no-gemm', 'model.onnx'),
      '--exclude',
      'Gemm',
    );
    assert.equal(byType.quantizedOps.Gemm, undefined);
    assert.equal(byType.excluded.length, 1);
    const stem = '/stem/stem.0/Conv';
    const byName = await quantizeJson(
      residual,
      '--output',
      path.join(dir, 'no-stem', 'model.onnx'),
      '--exclude',
      `${stem},Add`,
    );
    assert.deepEqual(byName.excluded.sort(), ['/Add', stem].sort());
    assert.equal(byName.quantizedOps.Conv, 3);
    assert.ok(!byName.nodeErrors.some((row: { node: string }) => row.node === stem));
    // The stem's ReLU stays a node: its producer is not quantized.
    const ops = (await readModelInfo(path.join(dir, 'no-stem', 'model.onnx'))).operatorHistogram.map((e) => e.op);
    assert.ok(ops.includes('Relu'));
  });

  it('calibrates with percentile ranges and from .npy samples, per-tensor and full 8-bit on request', async () => {
    const report = await quantizeJson(
      residual,
      '--output',
      path.join(dir, 'percentile', 'model.onnx'),
      '--method',
      'percentile',
      '--percentile',
      '99.9',
      '--calibration',
      path.join(dir, 'calibration.npy'),
      '--per-tensor',
      '--no-reduce-range',
    );
    assert.deepEqual(report.options, {
      method: 'percentile',
      percentile: 99.9,
      perChannel: false,
      reduceRange: false,
      exclude: [],
    });
    assert.equal(report.calibration.samples, 6);
    assert.ok(report.outputs[0].cosine > 0.99, `cosine ${report.outputs[0].cosine}`);
  });

  it('refuses a model with nothing to quantize and a model folder without samples, naming what is missing', async () => {
    const identity = path.join(dir, 'identity', 'model.onnx');
    await mkdir(path.dirname(identity), { recursive: true });
    await writeFile(identity, passThroughModel([{ input: 'x', output: 'y', datatype: 'FP32', shape: ['batch', 4] }]));
    await execute('python3', [
      '-c',
      `import numpy; numpy.save("${dir}/identity.npy", numpy.ones((2, 4), dtype=numpy.float32))`,
    ]);
    const nothing = await onnxServe(
      'quantize',
      identity,
      '--output',
      path.join(dir, 'identity-int8.onnx'),
      '--calibration',
      path.join(dir, 'identity.npy'),
    );
    assert.equal(nothing.code, 1);
    assert.match(
      nothing.stderr,
      /has no node to quantize \(Conv, MatMul or Gemm with constant weights, or Add, Concat, pooling on float tensors\)/,
    );
    const noSamples = await onnxServe('quantize', identity, '--output', path.join(dir, 'identity-int8.onnx'));
    assert.equal(noSamples.code, 1);
    assert.match(noSamples.stderr, /no sample inputs: .* holds no test_data_set_\* folder/);
    const badMethod = await onnxServe(
      'quantize',
      residual,
      '--output',
      path.join(dir, 'x.onnx'),
      '--method',
      'entropy',
    );
    assert.equal(badMethod.code, 1);
    assert.match(badMethod.stderr, /expected one of minmax, percentile, got "entropy"/);
    const typo = await onnxServe('quantize', residual, '--output', path.join(dir, 'x.onnx'), '--exclude', 'Conv,Gem');
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /--exclude Gem: no node of .*model\.onnx has that name or op type/);
  });

  it('quantizes the opset-9 PP-OCR orientation classifier, calibrated on rendered text through its preprocess config', async () => {
    const model = path.join(dir, 'cls', 'model.onnx');
    await mkdir(path.dirname(model), { recursive: true });
    await copyFile(path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), model);
    const images = path.join(dir, 'lines');
    await mkdir(images);
    const lines = ['Invoice 2024-117', 'Total due: 42.50 EUR', 'Ship to 17 Baker Street', 'quick brown fox'];
    for (const [i, text] of lines.entries()) await writeFile(path.join(images, `${i}.png`), await renderTextLine(text));
    const output = path.join(dir, 'cls-int8', 'model.onnx');
    const report = await quantizeJson(
      model,
      '--output',
      output,
      '--calibration',
      images,
      '--config',
      path.resolve('models/text-orientation/config.yaml'),
    );
    assert.equal(report.calibration.samples, 4);
    assert.match(report.calibration.source, /4 images in/);
    assert.ok(report.quantizedOps.Conv > 10, JSON.stringify(report.quantizedOps));
    const info = await readModelInfo(output);
    // Raised from 9 to 14 for its hard-swish chains, written as HardSwish (simplify.ts).
    assert.ok(report.simplified.hardSwish > 0, JSON.stringify(report.simplified));
    assert.equal(report.simplified.keptOpset, undefined);
    assert.deepEqual(
      info.opsetImports.find((opset) => opset.domain === 'ai.onnx'),
      { domain: 'ai.onnx', version: 14 },
    );
    // The fused graph needs QLinearConv (opset 10 and later): it loads.
    assert.ok((await fusedOperators(output)).includes('QLinearConv'));
    assert.equal(report.outputs[0].top1Agreement, 1);
  });
});

describe('quantize --dynamic', () => {
  it('turns MatMul weights into int8 with run-time activation quantization, fused by ONNX Runtime', async () => {
    const output = path.join(dir, 'mlp-int8', 'model.onnx');
    const report = await quantizeJson(mlp, '--output', output, '--dynamic');
    assert.equal(report.mode, 'dynamic');
    assert.deepEqual(report.quantizedOps, { MatMul: 2 });
    assert.equal(report.calibration, undefined);
    assert.ok(report.outputs[0].cosine > 0.999, `cosine ${report.outputs[0].cosine}`);
    const ops = (await readModelInfo(output)).operatorHistogram.map((entry) => entry.op);
    assert.ok(ops.includes('DynamicQuantizeLinear') && ops.includes('MatMulInteger'), ops.join(', '));
    assert.ok(!ops.includes('MatMul'));
    const fused = await fusedOperators(output);
    assert.ok(fused.includes('com.microsoft::DynamicQuantizeMatMul'), fused.join(', '));
  });

  it('refuses calibration options, which dynamic quantization has no use for', async () => {
    const result = await onnxServe(
      'quantize',
      mlp,
      '--output',
      path.join(dir, 'y.onnx'),
      '--dynamic',
      '--method',
      'percentile',
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--method is for static quantization; --dynamic needs no calibration/);
  });
});

describe('verify --against', () => {
  it('compares the int8 model with its float source on held-out inputs, exit code by thresholds', async () => {
    const int8 = path.join(dir, 'residual-int8', 'model.onnx');
    const pass = await onnxServe('verify', int8, path.join(dir, 'held-out.npz'), '--against', residual, '--json');
    assert.equal(pass.code, 0, pass.stderr);
    const report = JSON.parse(pass.stdout);
    assert.equal(report.samples, 8);
    assert.equal(report.heldOut, true);
    assert.equal(report.outputs[0].name, 'logits');
    assert.ok(report.outputs[0].cosine > 0.999 && report.outputs[0].cosine < 1);
    assert.ok(report.outputs[0].top1Agreement >= 0.875);

    const strict = await onnxServe(
      'verify',
      int8,
      path.join(dir, 'held-out.npz'),
      '--against',
      residual,
      '--max-abs',
      '1e-9',
    );
    assert.equal(strict.code, 1);
    assert.match(strict.stdout, /FAIL: logits beyond the thresholds/);

    const withoutReference = await onnxServe('verify', int8, '--min-cosine', '0.9');
    assert.equal(withoutReference.code, 1);
    assert.match(withoutReference.stderr, /--min-cosine needs --against FLOAT\.onnx/);

    const calibrationSet = await onnxServe('verify', int8, '--against', residual);
    assert.equal(calibrationSet.code, 0, calibrationSet.stderr);
    assert.match(calibrationSet.stdout, /these are the inputs the model was calibrated on/);
  });
});

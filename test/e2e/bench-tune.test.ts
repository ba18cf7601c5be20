/**
 * `onnx-serve bench --tune`: the grid, the choice within the p99 bound, and a short real tuning run
 * whose printed config.yaml parses and validates. Behaviour only: which cell wins depends on the machine.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import type { LevelResult } from '../../src/bench/load-generator.js';
import { bestCell, tuningGrid, tuningYaml, type TunedCell } from '../../src/bench/tune.js';
import { validateModelConfig } from '../../src/config/model-config.js';
import { OCR_ASSETS } from '../helpers/ocr.js';

const run = promisify(execFile);

function result(throughput: number, p99Ms: number, errors = 0): LevelResult {
  return { concurrency: 16, requests: 100, errors, throughput, meanMs: 1, p50Ms: 1, p90Ms: 1, p95Ms: 1, p99Ms };
}

describe('tuning grid', () => {
  it('keeps instances × threads = cores, with every batch size and delay, at most 12 cells on 2 cores', () => {
    const grid = tuningGrid(2);
    assert.equal(grid.length, 12);
    assert.deepEqual([...new Set(grid.map((c) => `${c.instances}x${c.threads}`))], ['1x2', '2x1']);
    assert.deepEqual([...new Set(grid.map((c) => c.maxBatchSize))], [4, 8, 16]);
    assert.deepEqual([...new Set(grid.map((c) => c.maxQueueDelayMs))], [0, 2]);
    assert.equal(tuningGrid(1).length, 6, 'one core: one split');
    assert.ok(tuningGrid(8).every((c) => c.instances * c.threads === 8));
  });

  it('picks the highest throughput within the p99 bound, never a cell with errors', () => {
    const [a, b, c] = tuningGrid(2);
    const cells: TunedCell[] = [
      { cell: a, result: result(100, 20) },
      { cell: b, result: result(300, 80) },
      { cell: c, result: result(500, 10, 3) },
    ];
    assert.equal(bestCell(cells, 50)?.cell, a);
    assert.equal(bestCell(cells, undefined)?.cell, b);
    assert.equal(bestCell(cells, 5), undefined);
  });

  it('prints keys that config.yaml accepts', () => {
    const config = parseYaml(tuningYaml({ instances: 2, threads: 1, maxBatchSize: 8, maxQueueDelayMs: 2 })) as unknown;
    assert.deepEqual(validateModelConfig(config, 'tuned'), {
      instances: 2,
      session: { intra_op_threads: 1 },
      max_batch_size: 8,
      dynamic_batching: { max_queue_delay_ms: 2 },
    });
  });
});

it('bench --tune on the text-orientation model prints a config.yaml snippet that validates', async () => {
  const model = path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
  const { stdout, stderr } = await run(
    process.execPath,
    ['--import', 'tsx', 'src/cli/index.ts', 'bench', model, '--tune', '--duration', '0.3', '--warmup', '2'].concat([
      '--concurrency',
      '4',
      '--shape',
      'x=1,3,48,192',
      '--p99',
      '60000',
    ]),
    { timeout: 120_000 },
  );
  assert.match(stderr, /tuning ch_ppocr_mobile_v2\.0_cls_infer\.onnx: \d+ cells × 0\.3 s at concurrency 4/);
  assert.match(stdout, /^# onnx-serve bench --tune: highest throughput within p99 ≤ 60000 ms at concurrency 4/);
  const config = validateModelConfig(parseYaml(stdout) as unknown, 'tuned');
  assert.ok(typeof config.instances === 'number' && config.instances >= 1);
  assert.ok(typeof config.session?.intra_op_threads === 'number');
  assert.ok([4, 8, 16].includes(config.max_batch_size!));
  assert.ok([0, 2].includes(config.dynamic_batching!.max_queue_delay_ms!));
});

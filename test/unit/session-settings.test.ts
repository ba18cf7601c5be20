/**
 * The thread plan: per-model defaults (a model alone uses every core) until the sessions' own
 * intra-op threads would pass 2 × usable cores; then models without an explicit
 * session.intra_op_threads get 1 thread and 1 instance. config.yaml always wins.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { ModelConfig } from '../../src/config/model-config.js';
import { scanRepository } from '../../src/repository/scan.js';
import type { CpuBudget } from '../../src/runtime/cpu.js';
import { resolveSessionSettings, sharedThreadPlan } from '../../src/runtime/session-settings.js';
import { DEFAULT_MODEL_REPOSITORY } from '../../src/server/start.js';

const cores = (usable: number): CpuBudget => ({ logical: usable, physical: usable, usable });
const same = (count: number, config: ModelConfig = {}): ModelConfig[] => Array.from({ length: count }, () => config);

it('a model alone, or a few, keep the per-model layout: the usable cores as intra-op threads', () => {
  for (const usable of [2, 4, 16]) {
    const plan = sharedThreadPlan(same(2), cores(usable));
    assert.deepEqual(plan, {
      sessions: 2,
      extraThreads: 2 * (usable - 1),
      limit: 2 * usable,
      shared: false,
    });
    const { settings, instances } = resolveSessionSettings({}, cores(usable), (p) => p, plan.shared);
    assert.deepEqual([instances, settings.intraOpThreads, settings.intraOpThreadsSource], [1, usable, 'cores']);
  }
});

it('the default OCR repository keeps its layout on 2, 4 and 16 cores (the pipeline runs no session)', async () => {
  const scan = await scanRepository(DEFAULT_MODEL_REPOSITORY);
  const configs = scan.specs.map((s) => s.config);
  assert.equal(configs.length, 4);
  for (const usable of [2, 4, 16]) {
    const plan = sharedThreadPlan(configs, cores(usable));
    // detector: 1 × usable; orientation and recognizer set intra_op_threads 1: usable instances × 1 each.
    assert.deepEqual(
      [plan.sessions, plan.extraThreads, plan.shared],
      [1 + 2 * usable, usable - 1, false],
      `${usable} cores`,
    );
  }
});

it('many models: past 2 × usable cores of extra threads, defaulted models get 1 thread and 1 instance', () => {
  // 2 cores: each default model keeps 1 extra thread; 5 models keep 5 > 4.
  assert.equal(sharedThreadPlan(same(4), cores(2)).shared, false);
  const plan = sharedThreadPlan(same(5), cores(2));
  assert.deepEqual(plan, { sessions: 5, extraThreads: 5, limit: 4, shared: true });
  assert.equal(sharedThreadPlan(same(100), cores(2)).extraThreads, 100);
  const { settings, instances } = resolveSessionSettings({}, cores(2), (p) => p, true);
  assert.deepEqual([instances, settings.intraOpThreads, settings.intraOpThreadsSource], [1, 1, 'many-models']);
  // One core: no session keeps a thread of its own, however many models.
  assert.equal(sharedThreadPlan(same(1000), cores(1)).shared, false);
});

it('config.yaml wins over the many-models default', () => {
  const shared = (config: ModelConfig) => {
    const { settings, instances } = resolveSessionSettings(config, cores(4), (p) => p, true);
    return [instances, settings.intraOpThreads, settings.intraOpThreadsSource];
  };
  assert.deepEqual(shared({ session: { intra_op_threads: 3 } }), [1, 3, 'config']);
  assert.deepEqual(shared({ session: { intra_op_threads: 2 } }), [2, 2, 'config']);
  assert.deepEqual(shared({ instances: 3 }), [3, 1, 'many-models']);
  assert.deepEqual(shared({ instances: 2, session: { intra_op_threads: 2 } }), [2, 2, 'config']);
  // Models that set 1 thread already keep no extra thread: many of them do not make the server shared.
  assert.equal(sharedThreadPlan(same(500, { session: { intra_op_threads: 1 } }), cores(2)).shared, false);
  // Explicit threads count toward the plan: they are kept whatever it decides.
  assert.equal(sharedThreadPlan(same(3, { session: { intra_op_threads: 4 } }), cores(4)).extraThreads, 9);
});

/** One model in one worker, for the commands (verify, convert, optimize) that run a model once and stop. */
import path from 'node:path';
import { cpuBudget } from './cpu.js';
import { resolveSessionSettings, type SessionSettings } from './session-settings.js';
import type { ModelSignature } from './signature.js';
import { WorkerPool } from './worker-pool.js';

/**
 * Starts the model in one worker with the session settings serving uses by default (or these
 * overrides), no warmup, and hands it to use; loading alone proves that onnxruntime-node accepts the file.
 */
export async function withModelPool<T>(
  modelPath: string,
  use: (pool: WorkerPool, signature: ModelSignature) => Promise<T>,
  overrides: Partial<SessionSettings> = {},
): Promise<T> {
  const settings = { ...resolveSessionSettings({}, cpuBudget(), (p) => p).settings, ...overrides };
  const pool = new WorkerPool({ label: path.basename(modelPath), modelPath, settings, warmup: { runs: 0 } }, 1);
  const { signature } = await pool.start();
  try {
    return await use(pool, signature);
  } finally {
    await pool.close();
  }
}

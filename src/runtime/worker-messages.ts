import type { ExecutionProviderName, WarmupConfig } from '../config/model-config.js';
import type { NamedTensor } from '../protocol/datatypes.js';
import type { ProviderAttempt } from './execution-providers.js';
import type { SessionSettings } from './session-settings.js';
import type { ModelSignature } from './signature.js';

/** What a worker needs to build its session: sent once as workerData. */
export interface WorkerSetup {
  label: string;
  modelPath: string;
  settings: SessionSettings;
  warmup: WarmupConfig;
}

export interface WarmupReport {
  runs: number;
  ms: number;
  /** Warmup on synthesised inputs may fail for a valid model (say, an input that carries shape values); the model serves anyway. */
  warning?: string;
  /** The shapes the warmup ran with, by input name. */
  shapes: Record<string, number[]>;
}

export type WorkerEvent =
  | {
      type: 'ready';
      provider: ExecutionProviderName;
      skippedProviders: ProviderAttempt[];
      signature: ModelSignature;
      loadMs: number;
      warmup: WarmupReport;
    }
  | { type: 'failed'; error: string }
  | { type: 'result'; id: number; outputs: NamedTensor[]; computeMs: number }
  | { type: 'error'; id: number; error: string };

export type WorkerCommand = { type: 'run'; id: number; inputs: NamedTensor[]; outputs?: string[] } | { type: 'close' };

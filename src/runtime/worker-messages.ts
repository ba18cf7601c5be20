import type { ExecutionProviderName, WarmupConfig } from '../config/model-config.js';
import type { NamedTensor } from '../protocol/datatypes.js';
import type { ProviderAttempt } from './execution-providers.js';
import type { SessionSettings } from './session-settings.js';
import type { ModelSignature } from './signature.js';

/** Given to an inference worker when its thread starts (its workerData). */
export interface InferenceWorkerData {
  /** Steps below the main thread's priority (thread-priority.ts). */
  nice: number;
}

/** What a worker needs to build one session: sent with the `load` command. */
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

/** A worker hosts many sessions; `session` is the id the main thread gave each one at `load`. */
export type WorkerEvent =
  /** `priorityFailure`: why the thread could not lower its priority (thread-priority.ts). */
  | { type: 'started'; priorityFailure?: string }
  | { type: 'primed'; error?: string }
  | {
      type: 'ready';
      session: number;
      provider: ExecutionProviderName;
      skippedProviders: ProviderAttempt[];
      signature: ModelSignature;
      loadMs: number;
      warmup: WarmupReport;
    }
  | { type: 'failed'; session: number; error: string }
  | { type: 'released'; session: number }
  /** `recycled`: the run's input buffers, transferred back for the main thread's BufferPool. */
  | { type: 'result'; id: number; outputs: NamedTensor[]; computeMs: number; recycled: ArrayBuffer[] }
  | { type: 'error'; id: number; error: string; recycled: ArrayBuffer[] };

export type WorkerCommand =
  | { type: 'load'; session: number; setup: WorkerSetup }
  | { type: 'run'; id: number; session: number; inputs: NamedTensor[]; outputs?: string[] }
  | { type: 'release'; session: number }
  /** Create and run prime-model.ts's model once, then release it: onnxruntime's setup done up front. */
  | { type: 'prime'; model: Uint8Array }
  | { type: 'close' };

import type { InferenceSession } from 'onnxruntime-node';
import type { ExecutionProviderName, GraphOptimizationLevel, ModelConfig } from '../config/model-config.js';
import type { CpuBudget } from './cpu.js';

/**
 * The session recipe with every default filled in: graph optimization `all`, intra-op threads =
 * usable physical cores (1 on a server shared by many models: `sharedThreadPlan`), inter-op 1,
 * sequential execution, memory arena and pattern on, no spinning of idle ORT threads, CUDA before CPU.
 * Instances default so that instances × intra-op threads ≈ usable cores.
 */
export interface SessionSettings {
  graphOptimizationLevel: GraphOptimizationLevel;
  intraOpThreads: number;
  /** Who chose intraOpThreads: config.yaml, the usable cores, or the many-models rule (sharedThreadPlan). */
  intraOpThreadsSource: IntraOpThreadsSource;
  interOpThreads: number;
  executionMode: 'sequential' | 'parallel';
  enableCpuMemArena: boolean;
  enableMemPattern: boolean;
  allowSpinning: boolean;
  executionProviders: ExecutionProviderName[];
  optimizedModelPath?: string;
  logSeverityLevel: 0 | 1 | 2 | 3 | 4;
}

export type IntraOpThreadsSource = 'config' | 'cores' | 'many-models';

export const DEFAULT_EXECUTION_PROVIDERS: ExecutionProviderName[] = ['cuda', 'cpu'];

/**
 * `shared`: the server hosts more sessions than their own intra-op threads should be multiplied for
 * (sharedThreadPlan); a model that does not set `session.intra_op_threads` then gets 1 thread and,
 * unless it sets `instances`, 1 instance. config.yaml always wins.
 */
export function resolveSessionSettings(
  config: ModelConfig,
  cpu: CpuBudget,
  resolvePath: (relative: string) => string,
  shared = false,
): { settings: SessionSettings; instances: number } {
  const session = config.session ?? {};
  const explicitInstances = typeof config.instances === 'number' ? config.instances : undefined;
  const explicitThreads = typeof session.intra_op_threads === 'number' ? session.intra_op_threads : undefined;
  const intraOpThreads =
    explicitThreads ?? (shared ? 1 : Math.max(1, Math.floor(cpu.usable / (explicitInstances ?? 1))));
  const instances =
    explicitInstances ??
    (shared && explicitThreads === undefined ? 1 : Math.max(1, Math.floor(cpu.usable / intraOpThreads)));
  const settings: SessionSettings = {
    graphOptimizationLevel: session.graph_optimization_level ?? 'all',
    intraOpThreads,
    intraOpThreadsSource: explicitThreads !== undefined ? 'config' : shared ? 'many-models' : 'cores',
    interOpThreads: session.inter_op_threads ?? 1,
    executionMode: session.execution_mode ?? 'sequential',
    enableCpuMemArena: session.enable_cpu_mem_arena ?? true,
    enableMemPattern: session.enable_mem_pattern ?? true,
    allowSpinning: session.allow_spinning ?? false,
    executionProviders: session.execution_providers ?? DEFAULT_EXECUTION_PROVIDERS,
    logSeverityLevel: session.log_severity_level ?? 2,
  };
  if (session.optimized_model_path !== undefined)
    settings.optimizedModelPath = resolvePath(session.optimized_model_path);
  return { settings, instances };
}

/** How the server's sessions' own intra-op threads add up under the per-model defaults. */
export interface SharedThreadPlan {
  /** Sessions the versions would hold with the per-model defaults. */
  sessions: number;
  /** Threads those sessions would keep beside the worker thread that calls run: instances × (intra-op − 1). */
  extraThreads: number;
  /** The most such threads the per-model defaults may keep: 2 × usable cores. */
  limit: number;
  /** Over the limit: models that do not set `session.intra_op_threads` get 1 (resolveSessionSettings `shared`). */
  shared: boolean;
}

/**
 * onnxruntime-node has no global thread pool: a session with N intra-op threads keeps N − 1 threads
 * of its own, idle or not, while at most `--workers` sessions run at once (one per worker thread).
 * A handful of models keep the per-model layout (a model alone uses every core; the default OCR
 * repository keeps 2 extra threads on 2 cores); once those extra threads would pass 2 × usable cores
 * (the slack the many-models target allows beside Node's own threads), the models without an explicit
 * `session.intra_op_threads` run on 1 thread each, so the worker threads alone fill the cores.
 */
export function sharedThreadPlan(configs: readonly ModelConfig[], cpu: CpuBudget): SharedThreadPlan {
  let sessions = 0;
  let extraThreads = 0;
  for (const config of configs) {
    if (config.pipeline !== undefined) continue;
    const { settings, instances } = resolveSessionSettings(config, cpu, (p) => p);
    sessions += instances;
    extraThreads += instances * (settings.intraOpThreads - 1);
  }
  const limit = 2 * cpu.usable;
  return { sessions, extraThreads, limit, shared: extraThreads > limit };
}

/** onnxruntime-node session options for one provider (fallback tries providers one at a time). */
export function toOrtSessionOptions(
  settings: SessionSettings,
  provider: ExecutionProviderName,
  logId: string,
): InferenceSession.SessionOptions {
  const spin = settings.allowSpinning ? '1' : '0';
  const options: InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: settings.graphOptimizationLevel,
    intraOpNumThreads: settings.intraOpThreads,
    interOpNumThreads: settings.interOpThreads,
    executionMode: settings.executionMode,
    enableCpuMemArena: settings.enableCpuMemArena,
    enableMemPattern: settings.enableMemPattern,
    logSeverityLevel: settings.logSeverityLevel,
    logId,
    // Flattened by the binding to onnxruntime's session config keys (session.intra_op.allow_spinning).
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  };
  if (settings.optimizedModelPath !== undefined) options.optimizedModelFilePath = settings.optimizedModelPath;
  return options;
}

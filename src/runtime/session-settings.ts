import type { InferenceSession } from 'onnxruntime-node';
import type { ExecutionProviderName, GraphOptimizationLevel, ModelConfig } from '../config/model-config.js';
import type { CpuBudget } from './cpu.js';

/**
 * The session recipe with every default filled in: graph optimization `all`, intra-op threads =
 * usable physical cores, inter-op 1, sequential execution, memory arena and pattern on, no spinning
 * of idle ORT threads, CUDA before CPU. Instances default so that instances × intra-op threads ≈ usable cores.
 */
export interface SessionSettings {
  graphOptimizationLevel: GraphOptimizationLevel;
  intraOpThreads: number;
  interOpThreads: number;
  executionMode: 'sequential' | 'parallel';
  enableCpuMemArena: boolean;
  enableMemPattern: boolean;
  allowSpinning: boolean;
  executionProviders: ExecutionProviderName[];
  optimizedModelPath?: string;
  logSeverityLevel: 0 | 1 | 2 | 3 | 4;
}

export const DEFAULT_EXECUTION_PROVIDERS: ExecutionProviderName[] = ['cuda', 'cpu'];

export function resolveSessionSettings(
  config: ModelConfig,
  cpu: CpuBudget,
  resolvePath: (relative: string) => string,
): { settings: SessionSettings; instances: number } {
  const session = config.session ?? {};
  const explicitInstances = typeof config.instances === 'number' ? config.instances : undefined;
  const intraOpThreads =
    typeof session.intra_op_threads === 'number'
      ? session.intra_op_threads
      : Math.max(1, Math.floor(cpu.usable / (explicitInstances ?? 1)));
  const instances = explicitInstances ?? Math.max(1, Math.floor(cpu.usable / intraOpThreads));
  const settings: SessionSettings = {
    graphOptimizationLevel: session.graph_optimization_level ?? 'all',
    intraOpThreads,
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

/**
 * What the log says when a provider is skipped. Kept apart from execution-providers.ts so the main
 * thread, which logs, does not load onnxruntime-node (only inference workers do).
 */
import type { ExecutionProviderName } from '../config/model-config.js';
import type { ProviderAttempt } from './execution-providers.js';

const PROVIDER_LABELS: Record<ExecutionProviderName, string> = {
  cpu: 'CPU',
  cuda: 'CUDA',
  tensorrt: 'TensorRT',
  webgpu: 'WebGPU',
};

function providerLabel(provider: ExecutionProviderName): string {
  return PROVIDER_LABELS[provider];
}

/**
 * The one line a server start logs when the default provider list (CUDA, then CPU) found no CUDA:
 * an info line, since nobody asked for CUDA ("CUDA not available: ...; serving on CPU").
 */
export function defaultProviderFallbackMessage(skipped: ProviderAttempt, used: ExecutionProviderName): string {
  return `${providerLabel(skipped.provider)} not available: ${skipped.error}; serving on ${providerLabel(used)}`;
}

/** The warning for a provider that config.yaml named and the model could not have. */
export function requestedProviderFallbackMessage(
  model: string,
  skipped: ProviderAttempt,
  used: ExecutionProviderName,
): string {
  return (
    `model ${model}: execution provider ${skipped.provider} (named in config.yaml) not used, ` +
    `serving on ${providerLabel(used)}: ${skipped.error}`
  );
}

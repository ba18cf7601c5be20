import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ExecutionProviderName } from '../config/model-config.js';
import { toOrtSessionOptions, type SessionSettings } from './session-settings.js';

/** Why a provider earlier in the list was not used. */
export interface ProviderAttempt {
  provider: ExecutionProviderName;
  error: string;
}

export interface CreatedSession {
  session: ort.InferenceSession;
  provider: ExecutionProviderName;
  /** Providers tried before the one in use, each with the reason it failed. */
  skipped: ProviderAttempt[];
}

/** Provider libraries that onnxruntime-node's install script downloads (they are not in the npm package). */
const PROVIDER_LIBRARIES: Partial<Record<ExecutionProviderName, string>> = {
  cuda: 'libonnxruntime_providers_cuda.so',
  tensorrt: 'libonnxruntime_providers_tensorrt.so',
};

/**
 * onnxruntime-node does not fall back by itself: asking for CUDA without its libraries fails the
 * whole session creation. We try the providers one at a time, in order, and say why each failed.
 * A provider whose library is plainly missing is skipped without asking onnxruntime, which would
 * only answer "Failed to load shared library" and print a long native error.
 */
export async function createSessionWithFallback(
  modelPath: string,
  settings: SessionSettings,
  logId: string,
): Promise<CreatedSession> {
  const skipped: ProviderAttempt[] = [];
  for (const provider of settings.executionProviders) {
    const missing = missingProviderReason(provider);
    if (missing !== undefined) {
      skipped.push({ provider, error: missing });
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(modelPath, toOrtSessionOptions(settings, provider, logId));
      return { session, provider, skipped };
    } catch (error) {
      skipped.push({ provider, error: (error as Error).message });
    }
  }
  const tried = skipped.map((a) => `${a.provider}: ${a.error}`).join('; ');
  throw new Error(`no execution provider could create a session for ${modelPath} (${tried})`);
}

function missingProviderReason(provider: ExecutionProviderName): string | undefined {
  const backend = ort.listSupportedBackends().find((b) => b.name === provider);
  if (provider !== 'cpu' && backend === undefined) {
    return `onnxruntime-node ${ort.env.versions.common} has no ${provider} backend on ${process.platform}/${process.arch}`;
  }
  const library = PROVIDER_LIBRARIES[provider];
  if (library === undefined) return undefined;
  const binDir = nativeBinaryDir();
  if (binDir !== undefined && !existsSync(path.join(binDir, library))) {
    return (
      `${library} is not installed in ${binDir}: onnxruntime-node's CPU-only package lacks the ${provider} libraries ` +
      `(its install script downloads them; this host needs them vendored, plus CUDA 12 and cuDNN 9)`
    );
  }
  return undefined;
}

function nativeBinaryDir(): string | undefined {
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const dir = path.join(path.dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

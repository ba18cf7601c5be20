import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LevelWithSilent } from 'pino';
import { createLogger, type Logger } from '../observability/logger.js';
import { ModelRegistry } from '../repository/model-registry.js';
import { scanRepository, specsForFiles, type ScanResult } from '../repository/scan.js';
import { cpuBudget } from '../runtime/cpu.js';
import { buildApp, DEFAULT_BODY_LIMIT, type ServerInfo } from './app.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, drainHttp } from './shutdown.js';
import type { RequestLimits } from './request-limits.js';
import { ModelControl, type ControlMode } from '../repository/model-control.js';

export const DEFAULT_POLL_SECS = 15;

/** Model control needs a repository to read and, unless explicitly waived, a token to guard it. */
function createModelControl(
  registry: ModelRegistry,
  repository: string | undefined,
  options: ServeOptions,
  log: Logger,
): ModelControl {
  const mode = options.modelControlMode;
  if (repository === undefined) {
    throw new Error(
      `--model-control-mode ${mode} needs --model-repository (model files given alone cannot be reloaded)`,
    );
  }
  if (options.controlToken === undefined && options.insecureControl !== true) {
    throw new Error(
      `--model-control-mode ${mode} needs a control token: --control-token or ONNX_SERVE_CONTROL_TOKEN ` +
        '(or --insecure-control to let anyone who reaches the port load and unload models)',
    );
  }
  if (options.controlToken === undefined) {
    log.warn({ mode }, 'model control endpoints are open to anyone who reaches the port (--insecure-control)');
  }
  return new ModelControl(registry, repository, log);
}

export interface ServeOptions {
  host?: string;
  port?: number;
  /** A Triton-style repository folder. */
  modelRepository?: string;
  /** Quick mode: ONNX files served as models named after them (added to the repository's models, if any). */
  modelFiles?: string[];
  logLevel?: LevelWithSilent;
  /** Use this logger instead of creating one (tests, embedding). */
  logger?: Logger;
  strictReadiness?: boolean;
  bodyLimit?: number;
  /** How long close() waits for accepted requests before cutting their connections. */
  drainTimeoutMs?: number;
  /** Header, tensor and BYTES limits (defaults: DEFAULT_REQUEST_LIMITS). */
  limits?: Partial<RequestLimits>;
  /** Triton's --model-control-mode (default none). */
  modelControlMode?: ControlMode;
  /** Poll mode: seconds between repository scans. */
  repositoryPollSecs?: number;
  /** Bearer token for the control endpoints; required in poll/explicit unless insecureControl. */
  controlToken?: string;
  insecureControl?: boolean;
}

export interface RunningServer {
  app: FastifyInstance;
  registry: ModelRegistry;
  /** http://host:port the server listens on. */
  url: string;
  /** Graceful: readiness turns false, new requests get 503, accepted ones finish, then workers stop. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_MODEL_REPOSITORY = fileURLToPath(new URL('../../models', import.meta.url));

export function serverInfo(modelControl = false): ServerInfo {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const extensions = ['binary_tensor_data', ...(modelControl ? ['model_repository'] : [])];
  return { name: 'onnx-serve', version: pkg.version, extensions };
}

/**
 * Listens first, then loads: /v2/health/live answers while models load, and /v2/health/ready turns
 * true only once they are loaded and warmed up. Resolves when loading is over.
 */
export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const log = options.logger ?? createLogger(options.logLevel === undefined ? {} : { level: options.logLevel });
  const cpu = cpuBudget();
  const registry = new ModelRegistry(cpu, log);

  const scans: ScanResult[] = [];
  const files = options.modelFiles ?? [];
  const repository = options.modelRepository ?? (files.length === 0 ? DEFAULT_MODEL_REPOSITORY : undefined);
  if (repository !== undefined) scans.push(await scanRepository(repository));
  if (files.length > 0) scans.push(specsForFiles(files));
  for (const scan of scans) registry.add(scan);
  const mode = options.modelControlMode ?? 'none';
  const control = mode === 'none' ? undefined : createModelControl(registry, repository, options, log);

  let draining = false;
  const app = buildApp({
    registry,
    log,
    info: serverInfo(control !== undefined),
    repository: { mode, control, ...(options.controlToken === undefined ? {} : { token: options.controlToken }) },
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    readiness: { strict: options.strictReadiness ?? true, draining: () => draining },
  });
  const url = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8000 });
  log.info(
    { url, repository, files, cores: cpu },
    `onnx-serve listening on ${url}; loading ${registry.versions().length} model version(s) on ${cpu.usable} usable core(s)`,
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      draining = true;
      await control?.stop();
      await drainHttp(app, options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS, log);
      await registry.close();
    })());
  try {
    await registry.loadAll();
  } catch (error) {
    await close();
    throw error;
  }
  await control?.adoptStartup();
  if (mode === 'poll') control?.startPolling((options.repositoryPollSecs ?? DEFAULT_POLL_SECS) * 1000);
  const ready = registry.versions().filter((v) => v.state === 'READY').length;
  log.info(
    { ready, total: registry.versions().length },
    `${ready} of ${registry.versions().length} model version(s) ready`,
  );
  return { app, registry, url, close };
}

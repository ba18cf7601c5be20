import type { FastifyInstance } from 'fastify';
import { fileURLToPath } from 'node:url';
import type { LevelWithSilent } from 'pino';
import { createLogger, type Logger } from '../observability/logger.js';
import { Observability, type ObservabilityOptions } from '../observability/observability.js';
import { ModelRegistry } from '../repository/model-registry.js';
import type { ModelVersion } from '../repository/model-version.js';
import { scanRepository, specsForFiles, type ScanOptions, type ScanResult } from '../repository/scan.js';
import { cpuBudget } from '../runtime/cpu.js';
import { startGrpcServer, type RunningGrpcServer } from '../grpc/server.js';
import { DEFAULT_MAX_IMAGE_PIXELS } from '../processing/image-decode.js';
import { buildApp, DEFAULT_BODY_LIMIT } from './app.js';
import { closeHttp, DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_SHUTDOWN_DELAY_MS, drainHttp, OpenRequests } from './shutdown.js';
import { DEFAULT_REQUEST_LIMITS, type RequestLimits } from '../core/request-limits.js';
import type { JsonWorkerThresholds } from './routes/infer.js';
import type { ConnectionLimits } from './connections.js';
import { DEFAULT_MAX_INFLIGHT_BYTES } from './inflight-bytes.js';
import { ModelControl, type ControlMode } from '../core/model-control.js';
import { serverInfo } from '../core/server-info.js';
import { collectsGarbageAlone } from '../runtime/gc-threads.js';

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
  return new ModelControl(registry, repository, log, scanOptionsOf(options));
}

function scanOptionsOf(options: ServeOptions): ScanOptions {
  return options.modelName === undefined ? {} : { modelName: options.modelName };
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
  /** gRPC port (0 picks a free one); left out, no gRPC endpoint starts (the CLI's default is 8001). */
  grpcPort?: number;
  /** Metrics, statistics, slow-inference log and dashboard: on by default; `false` only to measure their cost. */
  observability?: false | ObservabilityOptions;
  /** How long close() waits for accepted requests before cutting their connections. */
  drainTimeoutMs?: number;
  /**
   * How long close() keeps serving new requests after readiness turned false (the grace point), so
   * that load balancers stop routing here first. Default 0: refuse new requests at once.
   */
  shutdownDelayMs?: number;
  /** Header, tensor and BYTES limits (defaults: DEFAULT_REQUEST_LIMITS). */
  limits?: Partial<RequestLimits>;
  /** Bytes of request bodies being received at once (default DEFAULT_MAX_INFLIGHT_BYTES); more get 503. */
  maxInflightBytes?: number;
  /** HTTP timeouts and the connection cap (defaults: see connections.ts). */
  connections?: Partial<ConnectionLimits>;
  /** The model's name when the repository folder holds a bare model.onnx (KServe's --model-name). */
  modelName?: string;
  /** Triton's --model-control-mode (default none). */
  modelControlMode?: ControlMode;
  /** Poll mode: seconds between repository scans. */
  repositoryPollSecs?: number;
  /** Bearer token for the control endpoints; required in poll/explicit unless insecureControl. */
  controlToken?: string;
  insecureControl?: boolean;
  /** Largest image /predict decodes, in pixels (default DEFAULT_MAX_IMAGE_PIXELS). */
  maxImagePixels?: number;
  /** From which sizes on JSON is decoded and printed in a codec worker (default DEFAULT_JSON_WORKER_THRESHOLDS). */
  jsonWorkers?: Partial<JsonWorkerThresholds>;
  /** Where int8 variants (`precision: int8`) are built and kept (default: defaultCacheDir()). */
  cacheDir?: string;
  /** Worker threads shared by every model's sessions (default: the usable cores). */
  workers?: number;
  /** How far below the main thread the worker threads run, Linux nice steps (default DEFAULT_WORKER_NICE). */
  workerNice?: number;
  /**
   * Bytes of resident memory the models may hold; set, models load on their first request and the
   * least recently used idle ones are unloaded to make room (pipelines and their steps load at startup).
   */
  modelMemoryBudget?: number;
}

export interface RunningServer {
  app: FastifyInstance;
  registry: ModelRegistry;
  /** http://host:port the server listens on. */
  url: string;
  /** The gRPC endpoint, when one was started. */
  grpc?: RunningGrpcServer;
  /** Graceful: readiness turns false, new requests get 503, accepted ones finish, then workers stop. Idempotent. */
  close(): Promise<void>;
}

/** The ports Triton and KServe use: HTTP 8000, gRPC 8001. */
export const DEFAULT_HTTP_PORT = 8000;
export const DEFAULT_GRPC_PORT = 8001;

export const DEFAULT_MODEL_REPOSITORY = fileURLToPath(new URL('../../models', import.meta.url));

/**
 * Listens first, then loads: /v2/health/live answers while models load, and /v2/health/ready turns
 * true only once they are loaded and warmed up. Resolves when loading is over.
 */
export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const log = options.logger ?? createLogger(options.logLevel === undefined ? {} : { level: options.logLevel });
  const cpu = cpuBudget();
  const registry = new ModelRegistry(cpu, log, {
    cacheDir: options.cacheDir,
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    ...(options.workerNice === undefined ? {} : { workerNice: options.workerNice }),
    ...(options.modelMemoryBudget === undefined ? {} : { memoryBudget: options.modelMemoryBudget }),
  });

  const scans: ScanResult[] = [];
  const files = options.modelFiles ?? [];
  const repository = options.modelRepository ?? (files.length === 0 ? DEFAULT_MODEL_REPOSITORY : undefined);
  if (repository !== undefined) {
    const scan = await scanRepository(repository, scanOptionsOf(options));
    if (scan.specs.length === 0 && scan.errors.length === 0) {
      log.warn(
        { repository },
        `model repository ${repository} holds no model: expected <model>/<version>/model.onnx folders (symbolic links are followed)`,
      );
    }
    scans.push(scan);
  }
  if (files.length > 0) scans.push(specsForFiles(files));
  for (const scan of scans) registry.add(scan);
  const mode = options.modelControlMode ?? 'none';
  const control = mode === 'none' ? undefined : createModelControl(registry, repository, options, log);

  const observability =
    options.observability === false ? undefined : new Observability(registry, log, options.observability);
  let draining = false;
  let refusing = false;
  const open = new OpenRequests();
  const info = serverInfo(control !== undefined);
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const readiness = { strict: options.strictReadiness ?? true, draining: () => draining };
  const host = options.host ?? '127.0.0.1';
  const repositoryAccess = {
    mode,
    control,
    ...(options.controlToken === undefined ? {} : { token: options.controlToken }),
  };
  const app = buildApp({
    registry,
    log,
    info,
    repository: repositoryAccess,
    bodyLimit,
    maxInflightBytes: options.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.connections === undefined ? {} : { connections: options.connections }),
    ...(options.jsonWorkers === undefined ? {} : { jsonWorkers: options.jsonWorkers }),
    readiness,
    maxImagePixels: options.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS,
    observability,
    shutdown: { refusing: () => refusing, open },
  });
  const url = await app.listen({ host, port: options.port ?? DEFAULT_HTTP_PORT });
  let grpc: RunningGrpcServer | undefined;
  if (options.grpcPort !== undefined) {
    try {
      const port = options.grpcPort;
      const limits = { ...DEFAULT_REQUEST_LIMITS, ...options.limits };
      const maxMessageBytes = bodyLimit;
      grpc = await startGrpcServer({
        registry,
        repository: repositoryAccess,
        ...(observability === undefined ? {} : { observability }),
        log,
        info,
        readiness,
        limits,
        host,
        port,
        maxMessageBytes,
      });
    } catch (error) {
      await app.close();
      observability?.close();
      throw error;
    }
    log.info({ grpc: grpc.address }, `onnx-serve gRPC listening on ${grpc.address}`);
  }
  const gcAlone = collectsGarbageAlone();
  log.info(
    { url, repository, files, cores: cpu, gc: gcAlone ? 'single-threaded' : 'helper threads' },
    `onnx-serve listening on ${url}; loading ${registry.versions().filter((v) => v.onDemand === undefined).length} model version(s) ` +
      `on ${cpu.usable} usable core(s), ${registry.workers.size} worker thread(s)` +
      (registry.workers.nice > 0 && process.platform === 'linux' ? ` at nice +${registry.workers.nice}` : '') +
      (registry.memoryBudget === undefined
        ? ''
        : `; ${registry.versions().filter((v) => v.onDemand !== undefined).length} load on demand under a ${registry.memoryBudget.bytes}-byte budget`) +
      (gcAlone
        ? ''
        : '; V8 collects garbage with helper threads (start node with --single-threaded-gc, as npm start does)'),
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Readiness turns false at once; liveness answers until the listener closes, last of all.
      draining = true;
      await control?.stop();
      const delayMs = options.shutdownDelayMs ?? DEFAULT_SHUTDOWN_DELAY_MS;
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      refusing = true;
      const drainMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
      await Promise.all([drainHttp(app, open, drainMs, log), grpc?.close()]);
      await registry.close();
      await closeHttp(app);
      observability?.close();
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
    { ready, total: registry.versions().length, models: registry.versions().map(startupSummary) },
    `${ready} of ${registry.versions().length} model version(s) ready; dashboard on ${url}/, metrics on ${url}/metrics`,
  );
  return { app, registry, url, ...(grpc === undefined ? {} : { grpc }), close };
}

/** One model version in the startup summary line: what runs where, and what loading cost. */
function startupSummary(version: ModelVersion) {
  const { loaded } = version;
  return {
    model: version.name,
    version: version.version,
    state: version.state,
    ...(loaded === undefined
      ? { reason: version.reason }
      : {
          provider: loaded.provider,
          instances: loaded.instances,
          intraOpThreads: version.settings.intraOpThreads,
          loadMs: Math.round(loaded.loadMs),
          warmupMs: Math.round(loaded.warmup.ms),
        }),
  };
}

import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LevelWithSilent } from 'pino';
import { createLogger, type Logger } from '../observability/logger.js';
import { Observability, type ObservabilityOptions } from '../observability/observability.js';
import { ModelRegistry, type ModelVersion } from '../repository/model-registry.js';
import { scanRepository, specsForFiles, type ScanResult } from '../repository/scan.js';
import { cpuBudget } from '../runtime/cpu.js';
import { startGrpcServer, type RunningGrpcServer } from '../grpc/server.js';
import { buildApp, DEFAULT_BODY_LIMIT, type ServerInfo } from './app.js';

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
}

export interface RunningServer {
  app: FastifyInstance;
  registry: ModelRegistry;
  /** http://host:port the server listens on. */
  url: string;
  /** The gRPC endpoint, when one was started. */
  grpc?: RunningGrpcServer;
  close(): Promise<void>;
}

/** The ports Triton and KServe use: HTTP 8000, gRPC 8001. */
export const DEFAULT_HTTP_PORT = 8000;
export const DEFAULT_GRPC_PORT = 8001;

export const DEFAULT_MODEL_REPOSITORY = fileURLToPath(new URL('../../models', import.meta.url));

export function serverInfo(): ServerInfo {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return { name: 'onnx-serve', version: pkg.version, extensions: ['binary_tensor_data', 'statistics'] };
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

  const observability =
    options.observability === false ? undefined : new Observability(registry, log, options.observability);
  let draining = false;
  const info = serverInfo();
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const readiness = { strict: options.strictReadiness ?? true, draining: () => draining };
  const host = options.host ?? '127.0.0.1';
  const app = buildApp({ registry, log, info, bodyLimit, readiness, observability });
  const url = await app.listen({ host, port: options.port ?? DEFAULT_HTTP_PORT });
  let grpc: RunningGrpcServer | undefined;
  if (options.grpcPort !== undefined) {
    try {
      const port = options.grpcPort;
      grpc = await startGrpcServer({ registry, log, info, readiness, host, port, maxMessageBytes: bodyLimit });
    } catch (error) {
      await app.close();
      throw error;
    }
    log.info({ grpc: grpc.address }, `onnx-serve gRPC listening on ${grpc.address}`);
  }
  log.info(
    { url, repository, files, cores: cpu },
    `onnx-serve listening on ${url}; loading ${registry.versions().length} model version(s) on ${cpu.usable} usable core(s)`,
  );

  const close = async () => {
    draining = true;
    await Promise.all([app.close(), grpc?.close()]);
    await registry.close();
    observability?.close();
  };
  try {
    await registry.loadAll();
  } catch (error) {
    await close();
    throw error;
  }
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

import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LevelWithSilent } from 'pino';
import { createLogger, type Logger } from '../observability/logger.js';
import { ModelRegistry } from '../repository/model-registry.js';
import { scanRepository, specsForFiles, type ScanResult } from '../repository/scan.js';
import { cpuBudget } from '../runtime/cpu.js';
import { DEFAULT_MAX_IMAGE_PIXELS } from '../processing/image-decode.js';
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
  /** Largest image /predict decodes, in pixels (default DEFAULT_MAX_IMAGE_PIXELS). */
  maxImagePixels?: number;
}

export interface RunningServer {
  app: FastifyInstance;
  registry: ModelRegistry;
  /** http://host:port the server listens on. */
  url: string;
  close(): Promise<void>;
}

export const DEFAULT_MODEL_REPOSITORY = fileURLToPath(new URL('../../models', import.meta.url));

export function serverInfo(): ServerInfo {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return { name: 'onnx-serve', version: pkg.version, extensions: ['binary_tensor_data', 'predict'] };
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

  let draining = false;
  const app = buildApp({
    registry,
    log,
    info: serverInfo(),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    maxImagePixels: options.maxImagePixels ?? DEFAULT_MAX_IMAGE_PIXELS,
    readiness: { strict: options.strictReadiness ?? true, draining: () => draining },
  });
  const url = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8000 });
  log.info(
    { url, repository, files, cores: cpu },
    `onnx-serve listening on ${url}; loading ${registry.versions().length} model version(s) on ${cpu.usable} usable core(s)`,
  );

  const close = async () => {
    draining = true;
    await app.close();
    await registry.close();
  };
  try {
    await registry.loadAll();
  } catch (error) {
    await close();
    throw error;
  }
  const ready = registry.versions().filter((v) => v.state === 'READY').length;
  log.info(
    { ready, total: registry.versions().length },
    `${ready} of ${registry.versions().length} model version(s) ready`,
  );
  return { app, registry, url, close };
}

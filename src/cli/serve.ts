import { existsSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { LevelWithSilent, Logger } from 'pino';
import { createLogger, endLogs, LOG_FORMATS, type LogFormat } from '../observability/logger.js';
import { DEFAULT_MAX_IMAGE_PIXELS } from '../processing/image-decode.js';
import { DEFAULT_BODY_LIMIT } from '../server/app.js';
import { DEFAULT_MAX_INFLIGHT_BYTES } from '../server/inflight-bytes.js';
import { DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_SHUTDOWN_DELAY_MS } from '../server/shutdown.js';
import { DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DEFAULT_POLL_SECS, startServer } from '../server/start.js';
import { DEFAULT_REQUEST_LIMITS } from '../core/request-limits.js';
import { CONTROL_MODES, type ControlMode } from '../core/model-control.js';
import { missingModelFile } from './unknown-arguments.js';
import { cpuBudget } from '../runtime/cpu.js';
import { DEFAULT_WORKER_NICE, MAX_NICE } from '../runtime/thread-priority.js';
import { parseByteSize } from '../repository/on-demand.js';
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  defaultMaxConnections,
} from '../server/connections.js';

interface ServeFlags {
  host: string;
  port: number;
  grpcPort: number;
  modelRepository?: string;
  modelName?: string;
  logLevel: LevelWithSilent;
  logFormat: LogFormat;
  strictReadiness: boolean;
  maxBodySize: number;
  maxInflightBytes: number;
  drainTimeoutSecs: number;
  shutdownDelaySecs: number;
  modelControlMode: ControlMode;
  repositoryPollSecs: number;
  controlToken?: string;
  insecureControl?: boolean;
  maxHeaderSize: number;
  maxTensors: number;
  maxTensorElements: number;
  maxBytesElementSize: number;
  maxJsonOutputElements: number;
  maxImagePixels: number;
  headersTimeoutSecs: number;
  requestTimeoutSecs: number;
  keepAliveTimeoutSecs: number;
  maxConnections: number;
  cacheDir?: string;
  workers?: number;
  workerNice: number;
  modelMemoryBudget?: number;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function registerServeCommand(program: Command): void {
  program
    .command('serve', { isDefault: true })
    .description(
      'serve a model repository (default: the embedded OCR models) and/or .onnx files over the Open Inference Protocol',
    )
    .argument('[models...]', 'ONNX files to serve, each as a model named after its file')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'HTTP port (0 picks a free one)', parsePort, DEFAULT_HTTP_PORT)
    .option('--grpc-port <port>', 'gRPC port (0 disables the gRPC endpoint)', parsePort, DEFAULT_GRPC_PORT)
    .option('--model-repository <dir>', 'Triton-style model repository folder')
    .option(
      '--model-name <name>',
      "the model's name when the repository folder holds a bare model.onnx (KServe's /mnt/models); default model",
    )
    .option('--log-level <level>', `one of ${LOG_LEVELS.join(', ')}`, parseLogLevel, 'info')
    .option(
      '--log-format <format>',
      `${LOG_FORMATS.join(', ')}: auto writes readable lines to a terminal and JSON lines otherwise`,
      parseLogFormat,
      'auto',
    )
    .option('--no-strict-readiness', 'report ready once loading is done even if some models failed')
    .option('--max-body-size <bytes>', 'largest request body, in bytes', parsePositiveInt, DEFAULT_BODY_LIMIT)
    .option(
      '--max-inflight-bytes <bytes>',
      'bytes of request bodies being received at once; one more body gets 503 with Retry-After before it is read',
      parsePositiveInt,
      DEFAULT_MAX_INFLIGHT_BYTES,
    )
    .option(
      '--drain-timeout-secs <seconds>',
      'at SIGTERM/SIGINT, how long accepted requests may take to finish',
      parsePositiveInt,
      DEFAULT_DRAIN_TIMEOUT_MS / 1000,
    )
    .option(
      '--shutdown-delay-secs <seconds>',
      'at SIGTERM/SIGINT, how long new requests are still served after readiness turned false (for load balancers to stop routing)',
      parseNonNegativeNumber,
      DEFAULT_SHUTDOWN_DELAY_MS / 1000,
    )
    .option(
      '--max-header-size <bytes>',
      'largest request line plus headers',
      parsePositiveInt,
      DEFAULT_REQUEST_LIMITS.maxHeaderSize,
    )
    .option(
      '--max-tensors <n>',
      'most input tensors in one request',
      parsePositiveInt,
      DEFAULT_REQUEST_LIMITS.maxTensors,
    )
    .option(
      '--max-tensor-elements <n>',
      'most elements in one tensor',
      parsePositiveInt,
      DEFAULT_REQUEST_LIMITS.maxTensorElements,
    )
    .option(
      '--max-bytes-element-size <bytes>',
      'largest BYTES element',
      parsePositiveInt,
      DEFAULT_REQUEST_LIMITS.maxBytesElementSize,
    )
    .option(
      '--headers-timeout-secs <seconds>',
      'time a client has to send its request line and headers (408 and close after it)',
      parsePositiveNumber,
      DEFAULT_HEADERS_TIMEOUT_MS / 1000,
    )
    .option(
      '--request-timeout-secs <seconds>',
      'time a client has to send its whole request, headers and body (408 and close after it)',
      parsePositiveNumber,
      DEFAULT_REQUEST_TIMEOUT_MS / 1000,
    )
    .option(
      '--keep-alive-timeout-secs <seconds>',
      'time an idle keep-alive connection is kept open',
      parsePositiveNumber,
      DEFAULT_KEEP_ALIVE_TIMEOUT_MS / 1000,
    )
    .option(
      '--max-connections <n>',
      'open HTTP connections; more are closed on arrival (default: the open-files limit less a reserve)',
      parsePositiveInt,
      defaultMaxConnections(),
    )
    .option(
      '--max-json-output-elements <n>',
      'most output elements one JSON answer prints (413 advising binary outputs above it)',
      parsePositiveInt,
      DEFAULT_REQUEST_LIMITS.maxJsonOutputElements,
    )
    .option(
      '--model-control-mode <mode>',
      `${CONTROL_MODES.join(', ')}: load at startup only, follow the repository, or follow /v2/repository calls`,
      parseControlMode,
      'none',
    )
    .option(
      '--repository-poll-secs <seconds>',
      'poll mode: seconds between repository scans',
      parsePositiveInt,
      DEFAULT_POLL_SECS,
    )
    .option('--control-token <token>', 'bearer token for /v2/repository (default: env ONNX_SERVE_CONTROL_TOKEN)')
    .option('--insecure-control', 'allow model control without a token')
    .option(
      '--max-image-pixels <pixels>',
      'largest image /predict decodes, width × height (checked from the header, before decoding)',
      parsePositiveInt,
      DEFAULT_MAX_IMAGE_PIXELS,
    )
    .option(
      '--cache-dir <dir>',
      'where int8 variants (precision: int8 in config.yaml) are built and kept (default: env ONNX_SERVE_CACHE_DIR, else $XDG_CACHE_HOME/onnx-serve, else ~/.cache/onnx-serve)',
    )
    .option(
      '--workers <n>',
      `worker threads running inference for all models, each hosting many sessions (default: the usable cores, ${cpuBudget().usable} here)`,
      parsePositiveInt,
    )
    .option(
      '--worker-nice <n>',
      'how far below the main thread worker threads (and the ONNX Runtime threads they start) run, in Linux nice steps from 0 to 19: health checks and I/O go first when every core computes',
      parseNice,
      DEFAULT_WORKER_NICE,
    )
    .option(
      '--model-memory-budget <size>',
      'memory the models may hold (e.g. 2GB): models load on their first request, least recently used ones are unloaded to make room',
      parseMemoryBudget,
    )
    .action(async (models: string[], flags: ServeFlags) => {
      const missing = models.find((model) => !existsSync(model));
      if (missing !== undefined) throw new Error(missingModelFile(missing));
      const controlToken = flags.controlToken ?? (process.env.ONNX_SERVE_CONTROL_TOKEN || undefined);
      const logger = createLogger({ level: flags.logLevel, format: flags.logFormat });
      const server = await startServer({
        host: flags.host,
        port: flags.port,
        ...(flags.grpcPort === 0 ? {} : { grpcPort: flags.grpcPort }),
        ...(flags.modelRepository === undefined ? {} : { modelRepository: flags.modelRepository }),
        ...(flags.modelName === undefined ? {} : { modelName: flags.modelName }),
        modelFiles: models,
        logger,
        strictReadiness: flags.strictReadiness,
        bodyLimit: flags.maxBodySize,
        maxInflightBytes: flags.maxInflightBytes,
        drainTimeoutMs: flags.drainTimeoutSecs * 1000,
        shutdownDelayMs: flags.shutdownDelaySecs * 1000,
        limits: {
          maxHeaderSize: flags.maxHeaderSize,
          maxTensors: flags.maxTensors,
          maxTensorElements: flags.maxTensorElements,
          maxBytesElementSize: flags.maxBytesElementSize,
          maxJsonOutputElements: flags.maxJsonOutputElements,
        },
        connections: {
          headersTimeoutMs: flags.headersTimeoutSecs * 1000,
          requestTimeoutMs: flags.requestTimeoutSecs * 1000,
          keepAliveTimeoutMs: flags.keepAliveTimeoutSecs * 1000,
          maxConnections: flags.maxConnections,
        },
        modelControlMode: flags.modelControlMode,
        repositoryPollSecs: flags.repositoryPollSecs,
        ...(controlToken === undefined ? {} : { controlToken }),
        insecureControl: flags.insecureControl === true,
        maxImagePixels: flags.maxImagePixels,
        ...(flags.cacheDir === undefined ? {} : { cacheDir: flags.cacheDir }),
        ...(flags.workers === undefined ? {} : { workers: flags.workers }),
        workerNice: flags.workerNice,
        ...(flags.modelMemoryBudget === undefined ? {} : { modelMemoryBudget: flags.modelMemoryBudget }),
      });
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) {
          // A second signal means the operator will not wait for the drain.
          server.app.log.warn({ signal }, `received ${signal} again, exiting without waiting for requests`);
          exitAfterLogs(logger, 1);
          return;
        }
        stopping = true;
        server.app.log.info({ signal }, `received ${signal}, draining: no new requests, finishing accepted ones`);
        server.close().then(
          () => {
            server.app.log.info('drained; workers stopped; exiting');
            exitAfterLogs(logger, 0);
          },
          (error: unknown) => {
            server.app.log.error({ err: error }, 'shutdown failed');
            exitAfterLogs(logger, 1);
          },
        );
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}

// Bounds the wait for a log destination that no longer drains (a closed or stuck stdout).
const LOG_FLUSH_TIMEOUT_MS = 2000;

/** Exits once every log line is written, so that the last line logged is the last one out. */
function exitAfterLogs(log: Logger, code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), LOG_FLUSH_TIMEOUT_MS).unref();
  endLogs(log, () => process.exit(code));
}

function parseMemoryBudget(value: string): number {
  try {
    return parseByteSize(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`expected a port number from 0 to 65535, got "${value}"`);
  }
  return port;
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return n;
}

function parseNice(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > MAX_NICE) {
    throw new InvalidArgumentError(`expected a whole number from 0 to ${MAX_NICE}, got "${value}"`);
  }
  return n;
}

function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
}

function parseNonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number of 0 or more, got "${value}"`);
  return n;
}

function parseControlMode(value: string): ControlMode {
  if (!(CONTROL_MODES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${CONTROL_MODES.join(', ')}, got "${value}"`);
  }
  return value as ControlMode;
}

function parseLogLevel(value: string): LevelWithSilent {
  if (!LOG_LEVELS.includes(value))
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return value as LevelWithSilent;
}

function parseLogFormat(value: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(value))
    throw new InvalidArgumentError(`expected one of ${LOG_FORMATS.join(', ')}, got "${value}"`);
  return value as LogFormat;
}

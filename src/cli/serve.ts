import { InvalidArgumentError, type Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import { DEFAULT_BODY_LIMIT } from '../server/app.js';
import { DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, startServer } from '../server/start.js';

interface ServeFlags {
  host: string;
  port: number;
  grpcPort: number;
  modelRepository?: string;
  logLevel: LevelWithSilent;
  strictReadiness: boolean;
  maxBodySize: number;
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
    .option('--log-level <level>', `one of ${LOG_LEVELS.join(', ')}`, parseLogLevel, 'info')
    .option('--no-strict-readiness', 'report ready once loading is done even if some models failed')
    .option('--max-body-size <bytes>', 'largest request body, in bytes', parsePositiveInt, DEFAULT_BODY_LIMIT)
    .action(async (models: string[], flags: ServeFlags) => {
      const server = await startServer({
        host: flags.host,
        port: flags.port,
        ...(flags.grpcPort === 0 ? {} : { grpcPort: flags.grpcPort }),
        ...(flags.modelRepository === undefined ? {} : { modelRepository: flags.modelRepository }),
        modelFiles: models,
        logLevel: flags.logLevel,
        strictReadiness: flags.strictReadiness,
        bodyLimit: flags.maxBodySize,
      });
      const stop = (signal: NodeJS.Signals) => {
        server.app.log.info({ signal }, `received ${signal}, shutting down`);
        server.close().then(
          () => process.exit(0),
          (error: unknown) => {
            server.app.log.error({ err: error }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
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

function parseLogLevel(value: string): LevelWithSilent {
  if (!LOG_LEVELS.includes(value))
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return value as LevelWithSilent;
}

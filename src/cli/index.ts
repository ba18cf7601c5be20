#!/usr/bin/env node
import { Command } from 'commander';
import { serverInfo } from '../core/server-info.js';
import { registerBenchCommand } from './bench.js';
import { registerBuildCacheCommand } from './build-cache.js';
import { registerConvertCommand } from './convert.js';
import { registerInferCommand } from './infer.js';
import { registerInspectCommand } from './inspect.js';
import { registerOptimizeCommand } from './optimize.js';
import { registerQuantizeCommand } from './quantize.js';
import { registerServeCommand } from './serve.js';
import { refuseUnknownCommand } from './unknown-arguments.js';
import { registerVerifyCommand } from './verify.js';

const program = new Command('onnx-serve')
  .description('Inference server and toolkit for ONNX models: Open Inference Protocol over onnxruntime-node')
  .version(serverInfo().version)
  .showHelpAfterError();

registerServeCommand(program);
registerInspectCommand(program);
registerBenchCommand(program);
registerConvertCommand(program);
registerVerifyCommand(program);
registerOptimizeCommand(program);
registerQuantizeCommand(program);
registerBuildCacheCommand(program);
registerInferCommand(program);

const refusal = refuseUnknownCommand(program, process.argv.slice(2));
if (refusal !== undefined) {
  process.stderr.write(`onnx-serve: ${refusal}\n`);
  process.exitCode = 1;
} else {
  program.parseAsync().catch((error: unknown) => {
    process.stderr.write(`onnx-serve: ${(error as Error).message}\n`);
    process.exit(1);
  });
}

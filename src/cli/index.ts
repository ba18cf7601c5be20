#!/usr/bin/env node
import { Command } from 'commander';
import { serverInfo } from '../server/start.js';
import { registerInferCommand } from './infer.js';
import { registerInspectCommand } from './inspect.js';
import { registerServeCommand } from './serve.js';

const program = new Command('onnx-serve')
  .description('Inference server and toolkit for ONNX models: Open Inference Protocol over onnxruntime-node')
  .version(serverInfo().version)
  .showHelpAfterError();

registerServeCommand(program);
registerInspectCommand(program);
registerInferCommand(program);

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`onnx-serve: ${(error as Error).message}\n`);
  process.exit(1);
});

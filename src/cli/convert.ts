/**
 * `onnx-serve convert SOURCE --input NAME:SHAPE[:DTYPE] --output PATH`: PyTorch → ONNX through the
 * Python helper (eval mode, opset, constant folding, named inputs/outputs, dynamic batch, ONNX
 * checker, reference outputs as test data sets), then `verify` in onnx-serve's own runtime.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import path from 'node:path';
import {
  describeExportFailure,
  parseDynamicAxis,
  parseInputSpec,
  runExportHelper,
  type ExportJob,
  type InputSpec,
} from '../convert/convert.js';
import { findPython } from '../convert/python.js';
import { DEFAULT_TOLERANCE } from '../verify/compare.js';
import { withModelPool } from '../runtime/model-pool.js';
import { describeVerifyFailure, verifyModel, type VerifyReport } from '../verify/verify.js';
import { formatVerifyReport, parseTolerance, toleranceOf } from './verify.js';

interface ConvertFlags {
  input: InputSpec[];
  output: string;
  outputName?: string[];
  opset?: number;
  kwargs?: Record<string, unknown>;
  stateDict?: string;
  dynamicBatch: boolean;
  dynamicAxis?: ReturnType<typeof parseDynamicAxis>[];
  samples: number;
  sampleFile?: string;
  seed: number;
  python?: string;
  verify: boolean;
  atol: number;
  rtol: number;
  json?: boolean;
  skipEval?: boolean;
}

export function registerConvertCommand(program: Command): void {
  program
    .command('convert')
    .description('export a PyTorch model to ONNX, write reference test data next to it and verify it')
    .argument('<source>', 'path/file.py:factory, package.module:callable (torchvision.models:resnet50) or model.pt')
    .requiredOption(
      '--input <name:shape[:dtype]>',
      'a model input, e.g. x:1x3x224x224 (repeat for several)',
      collect(parseInputSpec),
    )
    .requiredOption('--output <path>', 'the .onnx file to write; test_data_set_* folders go next to it')
    .option('--output-name <name...>', 'names of the model outputs, in order (default output_0, output_1, ...)')
    .option('--opset <n>', 'ONNX opset (default: the highest the installed torch exports, at most 17)', parseWhole)
    .option('--kwargs <json>', 'keyword arguments for the factory, as a JSON object', parseKwargs)
    .option('--state-dict <path>', 'weights (torch.save of a state dict) to load into the factory’s model')
    .option('--no-dynamic-batch', 'keep the first axis fixed instead of dynamic')
    .option(
      '--dynamic-axis <name:axis:label>',
      'one more dynamic axis, e.g. tokens:1:sequence (repeatable)',
      collect(parseDynamicAxis),
    )
    .option('--samples <k>', 'seeded random input sets to record as test data', parseWhole, 5)
    .option('--sample-file <path.npz>', 'one more test data set from real inputs: a .npz with an array per input name')
    .option('--seed <n>', 'seed for random weights and inputs', parseWhole, 0)
    .option(
      '--python <path>',
      'Python interpreter with torch and onnx (default: $ONNX_SERVE_PYTHON, else the first that has them)',
    )
    .option('--no-verify', 'skip verification (the model is still loaded once to prove it runs)')
    .option('--atol <number>', 'absolute tolerance of the verification', parseTolerance, DEFAULT_TOLERANCE.atol)
    .option('--rtol <number>', 'relative tolerance of the verification', parseTolerance, DEFAULT_TOLERANCE.rtol)
    .option('--json', 'print the export result and verification report as JSON')
    // Proves that verification catches a model exported without eval(): reference outputs come from training mode.
    .addOption(new Option('--skip-eval').hideHelp())
    .action(async (source: string, flags: ConvertFlags) => {
      const python = await findPython(flags.python);
      const [result] = await runExportHelper(python.path, [toJob(source, flags)]);
      if (!result.ok) throw new Error(describeExportFailure(result));

      let verification: VerifyReport | undefined;
      if (flags.verify) verification = await verifyModel(result.output, toleranceOf(flags));
      else await withModelPool(result.output, async () => undefined);

      if (flags.json) {
        console.log(JSON.stringify({ python: python.path, export: result, verification }, null, 2));
      } else {
        console.log(
          `Exported ${source} to ${result.output} (opset ${result.opset}, torch ${result.torch} via ${python.path}); ` +
            `inputs ${result.inputs.join(', ')}; outputs ${result.outputs.join(', ')}; ${result.test_data_sets} test data sets`,
        );
        if (verification) console.log(formatVerifyReport(verification));
      }
      if (verification && !verification.pass) {
        process.stderr.write(
          `onnx-serve: ${result.output} does not match PyTorch: ${describeVerifyFailure(verification)}\n`,
        );
        process.exitCode = 1;
      }
    });
}

function toJob(source: string, flags: ConvertFlags): ExportJob {
  const job: ExportJob = {
    source,
    output: path.resolve(flags.output),
    inputs: flags.input,
    dynamic_batch: flags.dynamicBatch,
    samples: flags.samples,
    seed: flags.seed,
  };
  if (flags.outputName) job.output_names = flags.outputName;
  if (flags.opset !== undefined) job.opset = flags.opset;
  if (flags.kwargs) job.kwargs = flags.kwargs;
  if (flags.stateDict) job.state_dict = path.resolve(flags.stateDict);
  if (flags.sampleFile) job.sample_file = path.resolve(flags.sampleFile);
  if (flags.skipEval) job.skip_eval = true;
  if (flags.dynamicAxis) {
    job.dynamic_axes = {};
    for (const { name, axis, label } of flags.dynamicAxis) (job.dynamic_axes[name] ??= {})[axis] = label;
  }
  return job;
}

function collect<T>(parse: (text: string) => T) {
  return (text: string, previous: T[] | undefined): T[] => {
    try {
      return [...(previous ?? []), parse(text)];
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

function parseWhole(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number, got "${value}"`);
  return n;
}

function parseKwargs(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(`expected a JSON object, got "${value}" (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`expected a JSON object such as {"num_classes": 10}, got "${value}"`);
  }
  return parsed as Record<string, unknown>;
}

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { InferenceClient } from '../client/index.js';
import { decodeJsonTensorData } from '../protocol/json-decode.js';
import { encodeJsonResponse } from '../protocol/json-encode.js';
import { parseJsonText } from '../protocol/json-parse.js';
import type { TensorInput } from '../protocol/typed-tensors.js';
import { parseNpy } from './npy.js';

interface InferFlags {
  input: InputFile[];
  output?: string[];
  modelVersion?: string;
  binary?: boolean;
  timeout: number;
}

interface InputFile {
  name: string;
  file: string;
}

const IMAGE_TYPES: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
};

export function registerInferCommand(program: Command): void {
  program
    .command('infer')
    .description(
      'send inputs from files to a running server and print the answer as JSON: .npy and .json ({shape, datatype, data}) ' +
        'files as tensors to /infer, or one image to /predict',
    )
    .argument('<url>', 'the server, e.g. http://127.0.0.1:8000')
    .argument('<model>', 'the model name')
    .requiredOption('-i, --input <name=file>', 'an input tensor from a file (repeat for more)', collectInput, [])
    .option('-o, --output <name>', 'an output to return (repeat for more; default all)', collect)
    .option('--model-version <version>', 'a model version (default: the server picks)')
    .option('--binary', 'send tensors with the binary extension (default: binary above 16 KiB)')
    .option('--no-binary', 'send tensors as JSON')
    .option('--timeout <ms>', 'give up after this many milliseconds', parsePositiveInt, 60_000)
    .action(async (url: string, model: string, flags: InferFlags) => {
      const client = new InferenceClient(url, { timeoutMs: flags.timeout });
      const version = flags.modelVersion === undefined ? {} : { version: flags.modelVersion };
      const images = flags.input.filter((input) => imageTypeOf(input.file) !== undefined);
      if (images.length > 0) {
        if (flags.input.length !== 1) {
          throw new Error(`an image input is sent alone to ${model}/predict; got ${flags.input.length} inputs`);
        }
        const answer = await client.predict(model, await readFile(images[0].file), {
          ...version,
          contentType: imageTypeOf(images[0].file)!,
        });
        process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
        return;
      }
      const inputs: Record<string, TensorInput> = {};
      for (const input of flags.input) inputs[input.name] = await readTensor(input.file);
      const result = await client.infer(model, inputs, {
        ...version,
        ...(flags.output === undefined ? {} : { outputs: flags.output }),
        ...(flags.binary === undefined ? {} : { binary: flags.binary }),
      });
      // The protocol's own JSON: exact for INT64 and non-finite floats, which JSON.stringify is not.
      const json = encodeJsonResponse({
        model_name: result.modelName,
        ...(result.modelVersion === undefined ? {} : { model_version: result.modelVersion }),
        outputs: Object.entries(result.outputs).map(([name, tensor]) => ({ name, ...tensor })),
      });
      process.stdout.write(`${json}\n`);
    });
}

function imageTypeOf(file: string): string | undefined {
  return IMAGE_TYPES[path.extname(file).toLowerCase()];
}

/** A tensor from a .npy file or a .json file holding {shape, datatype, data}. */
async function readTensor(file: string): Promise<TensorInput> {
  const extension = path.extname(file).toLowerCase();
  const bytes = await readFile(file);
  if (extension === '.npy') return parseNpy(bytes, file);
  if (extension === '.json') {
    const value = parseJsonText(bytes.toString('utf8'), file) as Record<string, unknown>;
    const header = { name: file, ...value } as Parameters<typeof decodeJsonTensorData>[0];
    const { datatype, shape, data } = decodeJsonTensorData(header);
    return { datatype, shape, data };
  }
  throw new Error(
    `${file}: expected a .npy file, a .json file ({shape, datatype, data}) or an image (${Object.keys(IMAGE_TYPES).join(', ')})`,
  );
}

function collectInput(value: string, previous: InputFile[]): InputFile[] {
  const match = /^([^=]+)=(.+)$/.exec(value);
  if (match === null) throw new InvalidArgumentError(`expected name=file, got "${value}"`);
  return [...previous, { name: match[1], file: match[2] }];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive whole number, got "${value}"`);
  return n;
}

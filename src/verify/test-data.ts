/**
 * ONNX test data sets (the backend test convention): `test_data_set_N/input_K.pb` and
 * `output_K.pb`, one TensorProto each. A tensor without a name takes the name of the model's
 * K-th input or output, as the ONNX test runner does.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { NamedTensor } from '../protocol/datatypes.js';
import { readTensorProto } from '../onnx/model-file.js';

export interface TestDataSet {
  dir: string;
  inputs: NamedTensor[];
  expected: NamedTensor[];
}

const SET_DIR = /^test_data_set_(\d+)$/;

/** The test_data_set_* folders directly inside dir, in numeric order; [] when there are none. */
export async function findTestDataSets(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .filter((entry) => entry.isDirectory() && SET_DIR.test(entry.name))
    .map((entry) => entry.name)
    .sort((a, b) => Number(SET_DIR.exec(a)![1]) - Number(SET_DIR.exec(b)![1]))
    .map((name) => path.join(dir, name));
}

export async function readTestDataSet(dir: string, inputNames: string[], outputNames: string[]): Promise<TestDataSet> {
  return {
    dir,
    inputs: await readTensors(dir, 'input', inputNames),
    expected: await readTensors(dir, 'output', outputNames),
  };
}

async function readTensors(dir: string, prefix: 'input' | 'output', names: string[]): Promise<NamedTensor[]> {
  const pattern = new RegExp(`^${prefix}_(\\d+)\\.pb$`);
  const files = (await readdir(dir))
    .filter((file) => pattern.test(file))
    .sort((a, b) => Number(pattern.exec(a)![1]) - Number(pattern.exec(b)![1]));
  if (files.length === 0) throw new Error(`${dir} holds no ${prefix}_K.pb file; expected ${prefix}_0.pb, ...`);
  return Promise.all(
    files.map(async (file, index) => {
      const where = path.join(dir, file);
      let tensor: NamedTensor;
      try {
        tensor = readTensorProto(await readFile(where));
      } catch (error) {
        throw new Error(`${where}: ${(error as Error).message}`, { cause: error });
      }
      if (tensor.name !== '') return tensor;
      if (index >= names.length) {
        throw new Error(`${where} has no name and the model has only ${names.length} ${prefix}s (${names.join(', ')})`);
      }
      return { ...tensor, name: names[index] };
    }),
  );
}

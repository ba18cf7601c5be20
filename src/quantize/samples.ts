/**
 * Sample inputs for calibration and for comparing a quantized model with its float source: ONNX
 * test data sets, a folder of images run through a model's `preprocess` config, or NumPy files
 * (.npy for a one-input model, .npz with an array per input name). Arrays that stack several
 * samples along the first axis are split into batch-1 samples where the model's batch is dynamic.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { parseNpy } from '../cli/npy.js';
import { readModelConfig } from '../config/model-config.js';
import { DEFAULT_MAX_IMAGE_PIXELS, decodeImage } from '../processing/image-decode.js';
import { compilePreprocess, preprocessImages } from '../processing/preprocess.js';
import { elementCount, type NamedTensor, type Tensor } from '../protocol/datatypes.js';
import type { ModelSignature } from '../runtime/signature.js';
import { findTestDataSets, readTestDataSet } from '../verify/test-data.js';

export interface SampleSet {
  /** One entry per run: the model's inputs, by name. */
  samples: NamedTensor[][];
  /** Where they came from, for reports: "3 test data sets in DIR", "20 images in DIR". */
  description: string;
}

const IMAGE_FILE = /\.(jpe?g|png|webp|gif|tiff?|avif)$/i;
const NUMPY_FILE = /\.(npy|npz)$/i;

/**
 * Reads samples from `source` (a folder or a file); without one, the test data sets next to the
 * model. `configPath` is the config.yaml whose `preprocess` turns images into tensors (default:
 * the one of the model's repository folder).
 */
export async function readSamples(
  source: string | undefined,
  modelPath: string,
  signature: ModelSignature,
  configPath?: string,
): Promise<SampleSet> {
  const inputNames = signature.inputs.map((spec) => spec.name);
  if (source === undefined) {
    const dir = path.dirname(path.resolve(modelPath));
    const sets = await findTestDataSets(dir);
    if (sets.length === 0) {
      throw new Error(
        `no sample inputs: ${dir} holds no test_data_set_* folder; pass a folder of test data sets, images, .npy or .npz files`,
      );
    }
    return fromTestDataSets(sets, inputNames, dir);
  }
  let info;
  try {
    info = await stat(source);
  } catch {
    throw new Error(`sample inputs ${source}: no such file or folder`);
  }
  if (info.isFile()) {
    if (!NUMPY_FILE.test(source)) throw new Error(`sample inputs ${source}: expected a folder, a .npy or a .npz file`);
    return { samples: await fromNumpyFile(source, signature), description: source };
  }
  const sets = await findTestDataSets(source);
  if (sets.length > 0) return fromTestDataSets(sets, inputNames, source);
  const files = (await readdir(source)).sort();
  const images = files.filter((file) => IMAGE_FILE.test(file));
  const arrays = files.filter((file) => NUMPY_FILE.test(file));
  if (images.length > 0) {
    const samples = await fromImages(
      images.map((file) => path.join(source, file)),
      modelPath,
      signature,
      configPath,
    );
    return { samples, description: `${images.length} images in ${source}` };
  }
  if (arrays.length > 0) {
    const samples: NamedTensor[][] = [];
    for (const file of arrays) samples.push(...(await fromNumpyFile(path.join(source, file), signature)));
    return { samples, description: `${arrays.length} NumPy files in ${source}` };
  }
  throw new Error(
    `sample inputs ${source}: the folder holds no test_data_set_* folder, image (.jpg, .png, .webp, …), .npy or .npz file`,
  );
}

async function fromTestDataSets(sets: string[], inputNames: string[], dir: string): Promise<SampleSet> {
  const samples: NamedTensor[][] = [];
  for (const set of sets) samples.push((await readTestDataSet(set, inputNames, [])).inputs);
  return { samples, description: `${sets.length} test data sets in ${dir}` };
}

async function fromImages(
  files: string[],
  modelPath: string,
  signature: ModelSignature,
  configPath: string | undefined,
): Promise<NamedTensor[][]> {
  const config = configPath ?? (await findModelConfig(modelPath));
  if (config === undefined) {
    throw new Error(
      `images need the model's preprocess settings: pass --config CONFIG.yaml (no config.yaml found next to ${modelPath} or its version folder)`,
    );
  }
  const { preprocess } = await readModelConfig(config);
  if (preprocess === undefined) throw new Error(`${config} has no preprocess section; images cannot become tensors`);
  const plan = compilePreprocess(preprocess, signature.inputs, path.basename(modelPath));
  if (signature.inputs.length !== 1) {
    throw new Error(`images feed one input; the model has ${signature.inputs.length}`);
  }
  const samples: NamedTensor[][] = [];
  for (const file of files) {
    const image = await decodeImage(await readFile(file), `file ${file}`, DEFAULT_MAX_IMAGE_PIXELS);
    samples.push([(await preprocessImages([image], plan)).tensor]);
  }
  return samples;
}

/** config.yaml next to the model, or in the folder above its version folder (models/NAME/1/model.onnx). */
async function findModelConfig(modelPath: string): Promise<string | undefined> {
  const dir = path.dirname(path.resolve(modelPath));
  for (const candidate of [path.join(dir, 'config.yaml'), path.join(path.dirname(dir), 'config.yaml')]) {
    try {
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not there: try the next place
    }
  }
  return undefined;
}

async function fromNumpyFile(file: string, signature: ModelSignature): Promise<NamedTensor[][]> {
  const bytes = await readFile(file);
  const arrays = new Map<string, Tensor>();
  if (/\.npy$/i.test(file)) {
    if (signature.inputs.length !== 1) {
      throw new Error(
        `${file}: a .npy file feeds a one-input model; this one has ${signature.inputs.length} inputs (use a .npz with an array per input name)`,
      );
    }
    arrays.set(signature.inputs[0].name, parseNpy(bytes, file));
  } else {
    for (const [name, entry] of readZipEntries(bytes, file)) {
      if (name.endsWith('.npy')) arrays.set(name.slice(0, -4), parseNpy(entry, `${file}:${name}`));
    }
  }
  const columns = signature.inputs.map((spec) => {
    const array = arrays.get(spec.name);
    if (array === undefined) {
      throw new Error(
        `${file} has no array for input ${spec.name} (it has: ${[...arrays.keys()].join(', ') || 'none'})`,
      );
    }
    if (array.datatype !== spec.datatype) {
      throw new Error(`${file}: array ${spec.name} is ${array.datatype}, the model takes ${spec.datatype}`);
    }
    return { spec, array };
  });
  // Arrays one rank above the input hold several samples; so do arrays with a larger first dimension than a fixed one.
  const splits = columns.map(({ spec, array }) => {
    if (array.shape.length === spec.dims.length + 1) return array.shape[0];
    if (array.shape.length === spec.dims.length && typeof spec.dims[0] !== 'number' && array.shape[0] > 1) {
      return array.shape[0];
    }
    return 1;
  });
  const count = splits[0];
  if (splits.some((n) => n !== count)) {
    throw new Error(`${file}: the arrays hold different numbers of samples (${splits.join(', ')})`);
  }
  const samples: NamedTensor[][] = [];
  for (let i = 0; i < count; i++) {
    samples.push(
      columns.map(({ spec, array }) => {
        if (count === 1) return { ...array, name: spec.name } as NamedTensor;
        const rest = array.shape.slice(1);
        const size = elementCount(rest);
        const shape = array.shape.length === spec.dims.length ? [1, ...rest] : rest;
        const data = (array.data as Float32Array).slice(i * size, (i + 1) * size);
        return { name: spec.name, datatype: array.datatype, shape, data } as NamedTensor;
      }),
    );
  }
  return samples;
}

/**
 * The files of a zip archive (numpy.savez writes stored entries, savez_compressed deflated ones).
 * Hand-written because no zip reader is among the dependencies and .npz needs only this much:
 * the central directory, then each local header.
 */
function readZipEntries(bytes: Buffer, file: string): Map<string, Buffer> {
  const END_SIGNATURE = 0x06054b50;
  let end = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 65_557); at--) {
    if (bytes.readUInt32LE(at) === END_SIGNATURE) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new Error(`${file} is not a .npz (zip) archive: no end of central directory`);
  const entries = new Map<string, Buffer>();
  let at = bytes.readUInt32LE(end + 16);
  const count = bytes.readUInt16LE(end + 10);
  for (let i = 0; i < count; i++) {
    if (bytes.readUInt32LE(at) !== 0x02014b50) throw new Error(`${file}: damaged zip central directory`);
    const method = bytes.readUInt16LE(at + 10);
    let compressedSize = bytes.readUInt32LE(at + 20);
    const nameLength = bytes.readUInt16LE(at + 28);
    const extraLength = bytes.readUInt16LE(at + 30);
    const commentLength = bytes.readUInt16LE(at + 32);
    let localOffset = bytes.readUInt32LE(at + 42);
    const name = bytes.toString('utf8', at + 46, at + 46 + nameLength);
    // numpy writes zip64 records for large arrays: sizes and offset then sit in the extra field.
    const extra = bytes.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength);
    for (let e = 0; e + 4 <= extra.length; e += 4 + extra.readUInt16LE(e + 2)) {
      if (extra.readUInt16LE(e) !== 1) continue;
      let field = e + 4;
      const uncompressed = bytes.readUInt32LE(at + 24);
      if (uncompressed === 0xffffffff) field += 8;
      if (compressedSize === 0xffffffff) {
        compressedSize = Number(extra.readBigUInt64LE(field));
        field += 8;
      }
      if (localOffset === 0xffffffff) localOffset = Number(extra.readBigUInt64LE(field));
    }
    const dataStart = localOffset + 30 + bytes.readUInt16LE(localOffset + 26) + bytes.readUInt16LE(localOffset + 28);
    const data = bytes.subarray(dataStart, dataStart + compressedSize);
    if (method === 0) entries.set(name, data);
    else if (method === 8) entries.set(name, inflateRawSync(data));
    else throw new Error(`${file}: entry ${name} uses zip compression method ${method}; expected stored or deflate`);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

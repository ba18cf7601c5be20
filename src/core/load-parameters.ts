/**
 * The parameters of a repository load (Triton's repository extension), read the same way on every
 * transport. `config` replaces the model's configuration for that load: Triton's ModelConfig JSON (as
 * `GET /v2/models/{m}/config` answers it and tritonclient's `load_model(config=...)` sends it) or
 * config.yaml's keys as JSON. It is validated like config.yaml, and every file it names must lie inside
 * the model's folder: a load request must never make the server read (or write) a file elsewhere.
 * `file:<path>` parameters (model files sent with the request) are refused: onnx-serve loads only
 * from the repository.
 */
import path from 'node:path';
import { ConfigError, validateModelConfig, type ModelConfig } from '../config/model-config.js';
import type { FileRef } from '../config/processing-config.js';
import { fromTritonModelConfig, looksLikeTritonConfig } from '../config/triton-model-config.js';
import { invalidArgument, type ServeError } from '../protocol/errors.js';

export interface LoadOptions {
  /** Replaces config.yaml for this load; a later load without one reads config.yaml again. */
  config?: ModelConfig;
}

/** Triton's wording for every failed load (`failed to load 'm', ...`), which its clients and examples look for. */
export function loadFailure(model: string, detail: string): string {
  return `failed to load '${model}', ${detail}`;
}

const refused = (model: string, detail: string): ServeError => invalidArgument(loadFailure(model, detail));

/**
 * Reads a load request's parameters. Values are as the protocol's JSON holds them (HTTP) or as an
 * InferParameter's set field holds them (gRPC): `config` a string of JSON, or over HTTP a JSON object.
 */
export function parseLoadParameters(model: string, parameters: Record<string, unknown> | undefined): LoadOptions {
  const options: LoadOptions = {};
  for (const [name, value] of Object.entries(parameters ?? {})) {
    if (name.startsWith('file:')) {
      throw refused(
        model,
        `load parameter "${name}" is not supported: onnx-serve loads a model only from its folder in the repository; write the file there and load again`,
      );
    }
    if (name === 'config') options.config = loadConfig(model, value);
  }
  return options;
}

const WHERE = 'load parameter "config"';

function loadConfig(model: string, value: unknown): ModelConfig {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      throw refused(model, `load parameter "config" is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw refused(
      model,
      `load parameter "config" must be a JSON object (Triton's ModelConfig or config.yaml's keys), got ${JSON.stringify(parsed)}`,
    );
  }
  let config: ModelConfig;
  try {
    config = readConfig(model, parsed as Record<string, unknown>);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const message = error.message.startsWith(WHERE) ? error.message : `${WHERE}: ${error.message}`;
    throw refused(model, message);
  }
  const outside = filesOutsideModelFolder(config);
  if (outside.length > 0) {
    throw refused(
      model,
      `load parameter "config" names files outside the model's folder: ${outside.join('; ')}; a load's configuration may name only files inside the model's folder`,
    );
  }
  return config;
}

/**
 * config.yaml's form when it validates as such (its own keys, typed as config.yaml types them);
 * otherwise Triton's ModelConfig, whose JSON also writes numbers as strings and names in camelCase.
 * A text with a key only Triton has is Triton's, and its problems are reported in Triton's terms.
 */
function readConfig(model: string, value: Record<string, unknown>): ModelConfig {
  if (!looksLikeTritonConfig(value)) {
    try {
      return validateModelConfig(value, WHERE);
    } catch (ours) {
      try {
        return validateModelConfig(fromTritonModelConfig(value, model), WHERE);
      } catch {
        // Neither form: the config.yaml reading names the keys the sender most likely meant.
        throw ours;
      }
    }
  }
  return validateModelConfig(fromTritonModelConfig(value, model), WHERE);
}

/** Every file the config names that is not a relative path inside the model's folder, described. */
function filesOutsideModelFolder(config: ModelConfig): string[] {
  const files: Array<[string, FileRef | undefined]> = [
    ['source', config.source],
    ['session.optimized_model_path', config.session?.optimized_model_path],
    ...Object.entries(config.label_filename ?? {}).map(([output, file]): [string, FileRef] => [
      `label_filename.${output}`,
      file,
    ]),
  ];
  // The int8 variant's calibration inputs are read at load, like any other file the config names.
  files.push(['quantization.calibration', config.quantization?.calibration]);
  const postprocess = config.postprocess;
  if (postprocess?.type === 'top_k') files.push(['postprocess.labels_file', postprocess.labels_file]);
  if (postprocess?.type === 'ctc') files.push(['postprocess.dictionary_file', postprocess.dictionary_file]);
  const problems = files.flatMap(([key, file]) => {
    if (file === undefined) return [];
    if (typeof file !== 'string') return [`${key} names a file in package ${file.package}`];
    return insideFolder(file) ? [] : [`${key} is ${JSON.stringify(file)}`];
  });
  const modelFile = config.default_model_filename;
  if (modelFile === '.' || modelFile === '..') problems.push(`default_model_filename is "${modelFile}"`);
  if (config.pipeline !== undefined) {
    problems.push("pipeline (a pipeline's configuration is read from its config.yaml only)");
  }
  return problems;
}

/** A relative path that stays below its folder once normalised (no absolute path, no `..` out of it). */
function insideFolder(file: string): boolean {
  if (path.isAbsolute(file) || path.win32.isAbsolute(file)) return false;
  const normal = path.normalize(file.replaceAll('\\', '/'));
  return normal !== '..' && !normal.startsWith(`..${path.sep}`) && normal !== '.';
}

import { existsSync, type Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, readModelConfig, type ModelConfig } from '../config/model-config.js';

/** One loadable model version: where its file is and the config that applies. */
export interface ModelVersionSpec {
  name: string;
  version: number;
  /** The ONNX file; for a pipeline, its config.yaml. */
  modelPath: string;
  config: ModelConfig;
  /** Folder that relative paths in the config are resolved against. */
  configDir: string;
}

/** A model folder that cannot be loaded at all (bad config, no versions): reported, never fatal. */
export interface ModelScanError {
  name: string;
  error: string;
}

export interface ScanResult {
  specs: ModelVersionSpec[];
  errors: ModelScanError[];
}

export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
// Triton ignores version folders that are not numeric or that start with 0.
const VERSION_DIR = /^[1-9][0-9]{0,8}$/;
const CONFIG_FILES = ['config.yaml', 'config.yml'];

export interface ScanOptions {
  /**
   * The model's name when the folder holds a bare `model.onnx` (KServe's /mnt/models, named after the
   * InferenceService by `--model-name {{.Name}}`); default `model`.
   */
  modelName?: string;
  /** A repository load's `config` parameter: used for that model instead of its config.yaml. */
  configOverride?: { model: string; config: ModelConfig };
}

/** The config of a model folder: the override a load brought for it, else its config.yaml, else none. */
async function configOf(
  name: string,
  dir: string,
  options: ScanOptions,
): Promise<{ config: ModelConfig; file?: string }> {
  if (options.configOverride?.model === name) return { config: options.configOverride.config };
  const file = CONFIG_FILES.map((f) => path.join(dir, f)).find((f) => existsSync(f));
  return file === undefined ? { config: {} } : { config: await readModelConfig(file), file };
}

/**
 * Reads a Triton-style repository: `<repo>/<model>/[config.yaml]` and `<repo>/<model>/<version>/model.onnx`
 * (the file, or a folder holding it). A config may instead name a `source` file, which becomes one version.
 * A folder that holds `model.onnx` itself (KServe's layout) is one model, version 1, with the
 * config.yaml beside it.
 */
export async function scanRepository(repository: string, options: ScanOptions = {}): Promise<ScanResult> {
  const root = path.resolve(repository);
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (error) {
    throw new Error(`cannot read model repository ${root}: ${(error as Error).message}`);
  }
  const result: ScanResult = { specs: [], errors: [] };
  const bare = path.join(root, 'model.onnx');
  if (existsSync(bare) && (await stat(bare)).isFile()) {
    const name = options.modelName ?? 'model';
    try {
      if (!MODEL_NAME.test(name))
        throw new ConfigError(`--model-name ${name} is not a valid model name (${MODEL_NAME.source})`);
      const { config } = await configOf(name, root, options);
      result.specs.push({ name, version: 1, modelPath: bare, config, configDir: root });
    } catch (error) {
      result.errors.push({ name, error: (error as Error).message });
    }
    return result;
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const folder = await followFolder(root, entry);
    if (folder.error !== undefined) result.errors.push({ name: entry.name, error: folder.error });
    if (!folder.isFolder) continue;
    if (!MODEL_NAME.test(entry.name)) {
      result.errors.push({ name: entry.name, error: `folder name is not a valid model name (${MODEL_NAME.source})` });
      continue;
    }
    try {
      result.specs.push(...(await scanModel(entry.name, path.join(root, entry.name), options)));
    } catch (error) {
      result.errors.push({ name: entry.name, error: (error as Error).message });
    }
  }
  return result;
}

/**
 * The names of the model folders in a repository, read afresh: what an index lists even before a
 * folder is loaded (Triton lists every folder). Empty for KServe's single-model layout.
 */
export async function modelFolderNames(repository: string): Promise<string[]> {
  const root = path.resolve(repository);
  if (existsSync(path.join(root, 'model.onnx'))) return [];
  const names: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || !MODEL_NAME.test(entry.name)) continue;
    if ((await followFolder(root, entry)).isFolder) names.push(entry.name);
  }
  return names.sort((a, b) => a.localeCompare(b));
}

async function scanModel(name: string, dir: string, options: ScanOptions): Promise<ModelVersionSpec[]> {
  const { config, file: configPath } = await configOf(name, dir, options);
  const fileName = config.default_model_filename ?? 'model.onnx';

  if (config.pipeline !== undefined) return [pipelineSpec(name, dir, configPath!, config)];
  const versions: ModelVersionSpec[] = [];
  if (config.source !== undefined) {
    versions.push({
      name,
      version: config.version ?? 1,
      modelPath: resolveSource(config.source, dir),
      config,
      configDir: dir,
    });
  }
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!VERSION_DIR.test(entry.name) || !(await followFolder(dir, entry)).isFolder) continue;
    let modelPath = path.join(dir, entry.name, fileName);
    if (!existsSync(modelPath)) continue;
    if ((await stat(modelPath)).isDirectory()) modelPath = path.join(modelPath, 'model.onnx');
    const version = Number(entry.name);
    if (versions.some((v) => v.version === version)) {
      throw new ConfigError(`${dir}: version ${version} is given twice (source in config and folder ${entry.name})`);
    }
    versions.push({ name, version, modelPath, config, configDir: dir });
  }
  if (versions.length === 0) {
    throw new ConfigError(
      `${dir}: no model found; expected ${dir}/<version>/${fileName} (version a number not starting with 0) or "source" in config.yaml`,
    );
  }
  return applyVersionPolicy(
    versions.sort((a, b) => a.version - b.version),
    config,
  );
}

/**
 * Whether a directory entry is a folder, following symbolic links as Triton does (Kubernetes volume
 * mounts and `ln -s` build repositories of links). A link that leads nowhere is reported with why.
 */
async function followFolder(parent: string, entry: Dirent): Promise<{ isFolder: boolean; error?: string }> {
  if (entry.isDirectory()) return { isFolder: true };
  if (!entry.isSymbolicLink()) return { isFolder: false };
  const target = path.join(parent, entry.name);
  try {
    return { isFolder: (await stat(target)).isDirectory() };
  } catch (error) {
    return { isFolder: false, error: `symbolic link ${target} cannot be followed: ${(error as Error).message}` };
  }
}

/** A pipeline is one version made of other models; its folder holds config.yaml and nothing to load. */
function pipelineSpec(name: string, dir: string, configPath: string, config: ModelConfig): ModelVersionSpec {
  if (config.source !== undefined) {
    throw new ConfigError(`${configPath}: a pipeline runs other models; remove "source" or "pipeline"`);
  }
  return { name, version: config.version ?? 1, modelPath: configPath, config, configDir: dir };
}

function applyVersionPolicy(versions: ModelVersionSpec[], config: ModelConfig): ModelVersionSpec[] {
  const policy = config.version_policy;
  if (policy === undefined || 'all' in policy) return versions;
  if ('latest' in policy) return versions.slice(-policy.latest);
  const wanted = new Set(policy.specific);
  return versions.filter((v) => wanted.has(v.version));
}

export function resolveSource(source: NonNullable<ModelConfig['source']>, dir: string): string {
  if (typeof source === 'string') return path.resolve(dir, source);
  const packageDir = findPackageDir(source.package, dir);
  if (packageDir === undefined) {
    throw new ConfigError(
      `${dir}: source package ${source.package} is not installed (looked in node_modules from ${dir} up)`,
    );
  }
  const file = path.resolve(packageDir, source.file);
  if (!file.startsWith(packageDir + path.sep)) {
    throw new ConfigError(`${dir}: source.file ${source.file} points outside package ${source.package}`);
  }
  return file;
}

/**
 * The folder of an installed npm package, found the way Node finds packages (node_modules in this
 * folder and every parent), without require.resolve: packages with an `exports` map hide their files.
 */
function findPackageDir(name: string, from: string): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** Quick mode: each file is a model named after it (`resnet50.onnx` → `resnet50`), version 1. */
export function specsForFiles(files: string[]): ScanResult {
  const result: ScanResult = { specs: [], errors: [] };
  const seen = new Set<string>();
  for (const file of files) {
    const modelPath = path.resolve(file);
    const name = path
      .basename(modelPath)
      .replace(/\.onnx$/i, '')
      .replace(/[^A-Za-z0-9_.-]/g, '_');
    if (seen.has(name)) {
      result.errors.push({ name, error: `two model files are both named ${name}: ${file}` });
      continue;
    }
    seen.add(name);
    if (!existsSync(modelPath)) {
      result.errors.push({ name, error: `model file not found: ${modelPath}` });
      continue;
    }
    result.specs.push({ name, version: 1, modelPath, config: {}, configDir: path.dirname(modelPath) });
  }
  return result;
}

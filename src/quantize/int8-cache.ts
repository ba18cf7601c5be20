/**
 * Variants of a model file that the server builds on first load and keeps in a cache folder so that
 * the next start loads them at once: `precision: int8` (the int8 variant, built with the project's
 * quantizer on the calibration inputs the config names) and `simplify: true` (the float graph
 * simplified, simplify.ts).
 *
 * A cached file is used only when its manifest says it was built from the same float file (by
 * hash), with the same settings, quantizer version, calibration files and preprocessing, and when
 * the file still has the hash recorded at build time; anything else rebuilds it. Files are written
 * under a temporary name and renamed into place, the model before its manifest, so a build cut
 * short leaves either nothing or a model without a manifest (rebuilt), never a broken file that is
 * served.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ModelConfig, QuantizationConfig } from '../config/model-config.js';
import { readModelProto, writeModelProto } from '../onnx/model-proto.js';
import { quantizeModel, type QuantizeOptions } from './quantize.js';
import { simplifyGraph } from './simplify.js';

/**
 * Bumped whenever the quantizer or simplify.ts writes a different model for the same inputs (a new
 * rewrite, a different rounding), so that caches built by an older one are rebuilt.
 */
export const QUANTIZER_VERSION = 3;

/** Calibration folder, relative to config.yaml, when `quantization.calibration` is not set. */
export const DEFAULT_CALIBRATION_FOLDER = 'calibration';

const CONFIG_FILES = ['config.yaml', 'config.yml'];

/**
 * Where int8 variants are kept: `ONNX_SERVE_CACHE_DIR`, else `$XDG_CACHE_HOME/onnx-serve`, else
 * `~/.cache/onnx-serve`, as other command-line tools on Linux keep theirs.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ONNX_SERVE_CACHE_DIR !== undefined && env.ONNX_SERVE_CACHE_DIR !== '') {
    return path.resolve(env.ONNX_SERVE_CACHE_DIR);
  }
  const base =
    env.XDG_CACHE_HOME !== undefined && path.isAbsolute(env.XDG_CACHE_HOME)
      ? env.XDG_CACHE_HOME
      : path.join(os.homedir(), '.cache');
  return path.join(base, 'onnx-serve');
}

export interface Int8Request {
  /** The float model file the config names. */
  floatPath: string;
  config: ModelConfig;
  /** Folder of config.yaml: the calibration folder and preprocess are resolved against it. */
  configDir: string;
  cacheDir: string;
  /** Called when a build starts, with why (nothing cached, or what is wrong with the cached file). */
  building?: (reason: string) => void;
}

/** A file of the cache, built from a float model file. */
export interface CachedVariant {
  /** The file to serve, inside the cache folder. */
  path: string;
  floatPath: string;
  /** Hash of everything the file was built from: the float file, settings, calibration, quantizer version. */
  key: string;
  /** Whether this call built it (with why), or found it in the cache. */
  source: 'cache' | 'built';
  /** Why it was built: nothing cached yet, or what was wrong with the cached file. */
  buildReason?: string;
  /** Seconds the build took. */
  buildSeconds?: number;
}

export interface Int8Variant extends CachedVariant {
  /** The calibration inputs, as the quantizer described them. */
  calibration: string;
}

interface Manifest {
  key: string;
  quantizer_version: number;
  float: { path: string; sha256: string };
  /** The built file. */
  variant: { sha256: string; bytes: number };
  built_at: string;
  build_seconds: number;
  /** int8: the quantizer's settings. */
  settings?: Omit<QuantizeOptions, 'calibration' | 'config'>;
  calibration?: string;
  /** int8: the model against the float one on the calibration samples. */
  outputs?: Array<{ name: string; cosine: number; maxAbsError: number }>;
  /** simplify: what the rewrites changed. */
  simplified?: { hardSwish: number; foldedIntoConv: number; keptOpset?: string };
}

/** The quantizer's options for a config's `quantization` block: `onnx-serve quantize`'s defaults. */
export function quantizeOptionsOf(
  quantization: QuantizationConfig = {},
  simplify?: boolean,
): Omit<QuantizeOptions, 'calibration' | 'config'> {
  const method = quantization.method ?? 'minmax';
  return {
    mode: 'static',
    method,
    ...(method === 'percentile' ? { percentile: quantization.percentile ?? 99.999 } : {}),
    perChannel: quantization.per_channel ?? true,
    reduceRange: quantization.reduce_range ?? true,
    exclude: quantization.exclude ?? [],
    simplify: quantization.simplify ?? simplify ?? true,
    maxSamples: quantization.max_samples ?? 100,
    // The per-node report is for a person tuning `exclude`; the server only needs the model.
    reportSamples: 0,
  };
}

/** The cached int8 variant of the request's float file, built (and cached) first when it is missing or stale. */
export async function int8Variant(request: Int8Request): Promise<Int8Variant> {
  const { floatPath, config, configDir, cacheDir } = request;
  const settings = quantizeOptionsOf(config.quantization, config.simplify);
  const calibration = path.resolve(configDir, config.quantization?.calibration ?? DEFAULT_CALIBRATION_FOLDER);
  if (!existsSync(calibration)) {
    throw new Error(
      `precision int8 needs calibration inputs: ${calibration} does not exist (set quantization.calibration in config.yaml to a folder of images, test data sets or .npy/.npz files)`,
    );
  }
  const floatHash = await sha256File(floatPath);
  const key = sha256(
    JSON.stringify({
      quantizer: QUANTIZER_VERSION,
      float: floatHash,
      settings,
      calibration: await hashTree(calibration),
      // Images become tensors through preprocess: a change there changes the calibration samples.
      preprocess: config.preprocess ?? null,
    }),
  ).slice(0, 32);
  const file = path.join(cacheDir, 'int8', `${path.basename(floatPath, '.onnx')}.int8-${key}.onnx`);
  const found = await cachedBuild(file, key, floatPath, floatHash, request.building, async (temporary) => {
    let report;
    try {
      report = await quantizeModel(floatPath, temporary, { ...settings, calibration, config: configFileIn(configDir) });
    } catch (error) {
      throw new Error(`building the int8 variant of ${floatPath} failed: ${(error as Error).message}`);
    }
    return {
      settings,
      calibration: report.calibration?.source ?? calibration,
      outputs: report.outputs.map(({ name, cosine, maxAbsError }) => ({ name, cosine, maxAbsError })),
    };
  });
  return { ...found.variant, calibration: found.manifest.calibration ?? calibration };
}

export interface SimplifiedRequest {
  /** The float model file the config names. */
  floatPath: string;
  cacheDir: string;
  /** Called when a build starts, with why (nothing cached, or what is wrong with the cached file). */
  building?: (reason: string) => void;
}

/**
 * The cached copy of the float file with its graph simplified (`simplify: true`; simplify.ts's
 * rewrites, exact up to float rounding), built (and cached) first when it is missing or stale.
 */
export async function simplifiedVariant(request: SimplifiedRequest): Promise<CachedVariant> {
  const { floatPath, cacheDir } = request;
  const floatHash = await sha256File(floatPath);
  const key = sha256(JSON.stringify({ quantizer: QUANTIZER_VERSION, float: floatHash, simplify: true })).slice(0, 32);
  const file = path.join(cacheDir, 'simplified', `${path.basename(floatPath, '.onnx')}.simplified-${key}.onnx`);
  const found = await cachedBuild(file, key, floatPath, floatHash, request.building, async (temporary) => {
    try {
      const model = await readModelProto(floatPath);
      const simplified = simplifyGraph(model);
      await writeModelProto(temporary, model);
      return { simplified };
    } catch (error) {
      throw new Error(`simplifying ${floatPath} failed: ${(error as Error).message}`);
    }
  });
  return found.variant;
}

/**
 * The cache's file for `key`: as it is when its manifest and hash hold, else built by `build` into a
 * temporary file (which `build` writes) and renamed into place with its manifest.
 */
async function cachedBuild(
  file: string,
  key: string,
  floatPath: string,
  floatHash: string,
  building: ((reason: string) => void) | undefined,
  build: (temporary: string) => Promise<Partial<Manifest>>,
): Promise<{ variant: CachedVariant; manifest: Manifest }> {
  const manifestFile = `${file}.json`;
  const problem = await cachedProblem(file, manifestFile, key);
  if (problem === undefined) {
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as Manifest;
    return { variant: { path: file, floatPath, key, source: 'cache' }, manifest };
  }
  const dir = path.dirname(file);
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw new Error(`cannot create the cache folder ${dir} (set --cache-dir): ${(error as Error).message}`);
  }
  await removeAbandoned(dir);
  building?.(problem);
  const started = performance.now();
  const temporary = temporaryName(file);
  let details;
  try {
    details = await build(temporary);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  const buildSeconds = (performance.now() - started) / 1000;
  const manifest: Manifest = {
    key,
    quantizer_version: QUANTIZER_VERSION,
    float: { path: floatPath, sha256: floatHash },
    variant: { sha256: await sha256File(temporary), bytes: (await stat(temporary)).size },
    built_at: new Date().toISOString(),
    build_seconds: Math.round(buildSeconds * 10) / 10,
    ...details,
  };
  // The model first: a manifest never names a file that is not complete.
  await rename(temporary, file);
  const temporaryManifest = temporaryName(manifestFile);
  await writeFile(temporaryManifest, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(temporaryManifest, manifestFile);
  return {
    variant: { path: file, floatPath, key, source: 'built', buildReason: problem, buildSeconds },
    manifest,
  };
}

/** Why the cached file cannot be served (undefined: it can). */
async function cachedProblem(file: string, manifestFile: string, key: string): Promise<string | undefined> {
  if (!existsSync(file)) return 'not cached yet';
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as Manifest;
  } catch (error) {
    return `its manifest ${manifestFile} is missing or unreadable (${(error as Error).message})`;
  }
  if (manifest.key !== key || typeof manifest.variant?.sha256 !== 'string') {
    return `its manifest ${manifestFile} does not describe this build`;
  }
  const actual = await sha256File(file);
  if (actual !== manifest.variant.sha256) {
    return `the cached file is corrupt (sha256 ${actual.slice(0, 12)}…, built as ${manifest.variant.sha256.slice(0, 12)}…)`;
  }
  return undefined;
}

function temporaryName(file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

/** Temporary files left by processes that died while building (this entry or another). */
async function removeAbandoned(dir: string): Promise<void> {
  for (const entry of await readdir(dir)) {
    const match = /\.(\d+)\.[0-9a-f]+\.tmp$/.exec(entry);
    if (match === null || isAlive(Number(match[1]))) continue;
    await rm(path.join(dir, entry), { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function configFileIn(dir: string): string | undefined {
  return CONFIG_FILES.map((file) => path.join(dir, file)).find((file) => existsSync(file));
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function sha256File(file: string): Promise<string> {
  return sha256(await readFile(file));
}

/** One hash over a folder's files (names and contents, in sorted order), or over one file. */
async function hashTree(target: string): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (entry: string, name: string): Promise<void> => {
    if ((await stat(entry)).isDirectory()) {
      for (const child of (await readdir(entry)).sort()) await visit(path.join(entry, child), `${name}/${child}`);
      return;
    }
    hash.update(`${name}\0`);
    hash.update(await readFile(entry));
    hash.update('\0');
  };
  await visit(target, '.');
  return hash.digest('hex');
}

import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OCR_ASSETS } from './ocr.js';

/** The orientation classifier: small and fast, for load, fault and control tests. */
export const CLS_MODEL = path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

/**
 * A temporary repository with one model, `cls`, version 1 the orientation classifier, one instance
 * with one thread by default, warmed up once on `warmupShape`. `config` adds lines to its config.yaml.
 */
export async function clsRepository(warmupShape: number[], config = 'instances: 1'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-cls-'));
  await mkdir(path.join(dir, 'cls', '1'), { recursive: true });
  await copyFile(CLS_MODEL, path.join(dir, 'cls', '1', 'model.onnx'));
  await writeFile(
    path.join(dir, 'cls', 'config.yaml'),
    `${config}\nsession: { intra_op_threads: 1 }\nwarmup: { runs: 1, inputs: { x: { shape: [${warmupShape.join(', ')}] } } }\n`,
  );
  return dir;
}

/**
 * A temporary copy of the default repository (models/) whose `ocr` pipeline has `pipeline` lines
 * added or replaced (e.g. `line_orientation: true`), and whose models have the lines of `models`
 * (by model name) set in their config.yaml (one top-level `key: value` a line); package files are pointed at by absolute path, so the
 * copy works outside the project.
 */
export async function ocrRepositoryWith(
  pipeline: Record<string, string | number | boolean>,
  models: Record<string, string> = {},
): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-ocr-'));
  await cp(path.resolve('models'), dir, { recursive: true });
  for (const model of await readdir(dir)) {
    const file = path.join(dir, model, 'config.yaml');
    let text = (await readFile(file, 'utf8')).replace(
      /\n(\s*)(source|dictionary_file):\n\s+package: '@gutenye\/ocr-models'\n\s+file: (\S+)/g,
      (_, indent: string, key: string, inside: string) => `\n${indent}${key}: ${path.join(OCR_ASSETS, '..', inside)}`,
    );
    if (model === 'ocr') {
      for (const [key, value] of Object.entries(pipeline)) {
        const line = `  ${key}: ${value}`;
        text = new RegExp(`^  ${key}:.*$`, 'm').test(text)
          ? text.replace(new RegExp(`^  ${key}:.*$`, 'm'), line)
          : `${text.trimEnd()}\n${line}\n`;
      }
    }
    // A top-level key the config already has is replaced; others are added.
    for (const line of (models[model] ?? '').split('\n').filter((l) => l !== '')) {
      const key = new RegExp(`^${line.split(':')[0]}:.*$`, 'm');
      text = key.test(text) ? text.replace(key, line) : `${text.trimEnd()}\n${line}\n`;
    }
    await writeFile(file, text);
  }
  return dir;
}

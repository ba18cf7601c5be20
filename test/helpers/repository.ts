import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
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

/**
 * The serve-time gate: a model version folder that holds ONNX test data sets is checked against
 * them once its instances are up, so a model whose outputs drifted from PyTorch is never served.
 */
import path from 'node:path';
import type { ModelVersionSpec } from './scan.js';
import type { ModelSignature } from '../runtime/signature.js';
import type { WorkerPool } from '../runtime/worker-pool.js';
import { DEFAULT_TOLERANCE } from '../verify/compare.js';
import { findTestDataSets } from '../verify/test-data.js';
import { describeVerifyFailure, verifyWithPool, type VerifyReport } from '../verify/verify.js';

/** The report, or undefined when there is nothing to check (no test data, or `verify: false`). */
export async function verifyOnLoad(
  spec: ModelVersionSpec,
  pool: WorkerPool,
  signature: ModelSignature,
): Promise<VerifyReport | undefined> {
  if (spec.config.verify === false) return undefined;
  // Test data holds the float model's outputs: an int8 variant is checked against them only with
  // tolerances the config chose for it.
  if (spec.config.precision === 'int8' && typeof spec.config.verify !== 'object') return undefined;
  const sets = await findTestDataSets(path.dirname(spec.modelPath));
  if (sets.length === 0) return undefined;
  const tolerance = { ...DEFAULT_TOLERANCE, ...(typeof spec.config.verify === 'object' ? spec.config.verify : {}) };
  const report = await verifyWithPool(pool, signature, spec.modelPath, sets, tolerance);
  if (!report.pass) {
    throw new Error(
      `its outputs disagree with the test data in ${report.testData} (set verify: false in config.yaml to serve it anyway): ` +
        describeVerifyFailure(report),
    );
  }
  return report;
}

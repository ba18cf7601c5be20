/**
 * How closely a derived model (int8, float16) agrees with its float source on the same inputs:
 * per output the largest absolute and relative error, the cosine similarity of the two outputs
 * taken as vectors, and for outputs with a class axis (the last, longer than 1) how often the
 * top-1 class agrees. Unlike `verify` against test data, nothing here is expected to be exact.
 */
import type { NamedTensor } from '../protocol/datatypes.js';
import { withModelPool } from '../runtime/model-pool.js';

export interface OutputAgreement {
  name: string;
  elements: number;
  maxAbsError: number;
  /** Over the elements whose reference value is not 0. */
  maxRelError: number;
  /** Over every sample's output as one vector: 1 is the same direction. */
  cosine: number;
  /** Share of rows (all axes but the last) whose arg-max agrees; undefined without a class axis. */
  top1Agreement?: number;
}

/** Runs `samples` through both models (one worker each, one after the other) and compares every float output. */
export async function compareOutputs(
  referencePath: string,
  candidatePath: string,
  samples: NamedTensor[][],
): Promise<OutputAgreement[]> {
  const reference = await runAll(referencePath, samples);
  const candidate = await runAll(candidatePath, samples);
  const accumulators = new Map<string, Accumulator>();
  for (const [index, outputs] of reference.entries()) {
    for (const want of outputs) {
      if (!(want.data instanceof Float32Array)) continue;
      const got = candidate[index].find((tensor) => tensor.name === want.name);
      if (got === undefined) throw new Error(`${candidatePath} has no output ${want.name}`);
      if (!(got.data instanceof Float32Array) || got.data.length !== want.data.length) {
        throw new Error(
          `output ${want.name}: ${candidatePath} gives ${got.datatype} [${got.shape.join(', ')}], ` +
            `expected ${want.datatype} [${want.shape.join(', ')}] as ${referencePath} gives`,
        );
      }
      let accumulator = accumulators.get(want.name);
      if (accumulator === undefined) accumulators.set(want.name, (accumulator = new Accumulator(want.name)));
      accumulator.add(want.data, got.data, want.shape);
    }
  }
  return [...accumulators.values()].map((accumulator) => accumulator.result());
}

async function runAll(modelPath: string, samples: NamedTensor[][]): Promise<NamedTensor[][]> {
  return withModelPool(modelPath, async (pool) => {
    const results: NamedTensor[][] = [];
    for (const sample of samples) {
      // The pool transfers input buffers to the worker, so every run gets its own copy.
      const inputs = sample.map((tensor) => ({ ...tensor, data: tensor.data.slice() }) as NamedTensor);
      results.push((await pool.run(inputs)).outputs);
    }
    return results;
  });
}

class Accumulator {
  #elements = 0;
  #maxAbs = 0;
  #maxRel = 0;
  #dot = 0;
  #normWant = 0;
  #normGot = 0;
  #rows = 0;
  #agreeing = 0;
  #hasClassAxis = true;

  constructor(readonly name: string) {}

  add(want: Float32Array, got: Float32Array, shape: number[]): void {
    for (let i = 0; i < want.length; i++) {
      const abs = Math.abs(got[i] - want[i]);
      if (abs > this.#maxAbs || Number.isNaN(abs)) this.#maxAbs = Number.isNaN(abs) ? Infinity : abs;
      if (want[i] !== 0) this.#maxRel = Math.max(this.#maxRel, abs / Math.abs(want[i]));
      this.#dot += want[i] * got[i];
      this.#normWant += want[i] * want[i];
      this.#normGot += got[i] * got[i];
    }
    this.#elements += want.length;
    const classes = shape.length >= 2 ? shape[shape.length - 1] : 0;
    if (classes <= 1) {
      this.#hasClassAxis = false;
      return;
    }
    for (let row = 0; row < want.length / classes; row++) {
      this.#rows++;
      if (argMax(want, row * classes, classes) === argMax(got, row * classes, classes)) this.#agreeing++;
    }
  }

  result(): OutputAgreement {
    const norms = Math.sqrt(this.#normWant) * Math.sqrt(this.#normGot);
    // Two all-zero outputs agree completely; one zero and one not share no direction.
    const cosine = norms > 0 ? this.#dot / norms : this.#normWant === this.#normGot ? 1 : 0;
    return {
      name: this.name,
      elements: this.#elements,
      maxAbsError: this.#maxAbs,
      maxRelError: this.#maxRel,
      cosine,
      top1Agreement: this.#hasClassAxis && this.#rows > 0 ? this.#agreeing / this.#rows : undefined,
    };
  }
}

function argMax(values: Float32Array, start: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (values[start + i] > values[start + best]) best = i;
  return best;
}

export interface AgreementThresholds {
  minCosine: number;
  /** Checked for outputs with a class axis. */
  minTop1: number;
  /** Checked where given. */
  maxAbsError?: number;
}

export const DEFAULT_AGREEMENT: AgreementThresholds = { minCosine: 0.99, minTop1: 0.9 };

export interface AgreementReport {
  model: string;
  reference: string;
  inputs: string;
  samples: number;
  /** False where the inputs are the ones the model was calibrated on (its onnx_serve.quantize metadata says so). */
  heldOut: boolean;
  thresholds: AgreementThresholds;
  outputs: (OutputAgreement & { pass: boolean })[];
  pass: boolean;
}

/** The candidate against its reference on `samples`, each output judged by the thresholds. */
export async function verifyAgreement(
  modelPath: string,
  referencePath: string,
  samples: { samples: NamedTensor[][]; description: string },
  calibratedOn: string | undefined,
  thresholds: AgreementThresholds,
): Promise<AgreementReport> {
  if (samples.samples.length === 0) throw new Error(`no sample inputs in ${samples.description}`);
  const outputs = (await compareOutputs(referencePath, modelPath, samples.samples)).map((output) => ({
    ...output,
    pass:
      output.cosine >= thresholds.minCosine &&
      (output.top1Agreement === undefined || output.top1Agreement >= thresholds.minTop1) &&
      (thresholds.maxAbsError === undefined || output.maxAbsError <= thresholds.maxAbsError),
  }));
  return {
    model: modelPath,
    reference: referencePath,
    inputs: samples.description,
    samples: samples.samples.length,
    heldOut: calibratedOn !== samples.description,
    thresholds,
    outputs,
    pass: outputs.length > 0 && outputs.every((output) => output.pass),
  };
}

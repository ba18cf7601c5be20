/**
 * Runs the PyTorch export helper (python/onnx_serve_export.py): one Python process converts any
 * number of models, because importing torch alone takes seconds.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Element types the helper can feed a model; the names are torch's. */
export const TORCH_DTYPES = ['float32', 'float64', 'float16', 'int64', 'int32', 'int8', 'uint8', 'bool'] as const;
export type TorchDtype = (typeof TORCH_DTYPES)[number];

export interface InputSpec {
  name: string;
  shape: number[];
  dtype: TorchDtype;
}

/** One model to export; field names are the helper's (see the docstring of onnx_serve_export.py). */
export interface ExportJob {
  source: string;
  output: string;
  inputs: InputSpec[];
  output_names?: string[];
  kwargs?: Record<string, unknown>;
  state_dict?: string;
  opset?: number;
  dynamic_batch?: boolean;
  dynamic_axes?: Record<string, Record<string, string>>;
  samples?: number;
  sample_file?: string;
  seed?: number;
  skip_eval?: boolean;
}

export type ExportResult =
  | {
      ok: true;
      output: string;
      opset: number;
      inputs: string[];
      outputs: string[];
      test_data_sets: number;
      torch: string;
    }
  | { ok: false; output: string; stage: string; message: string; error: string; traceback: string };

export const EXPORT_HELPER = fileURLToPath(new URL('../../python/onnx_serve_export.py', import.meta.url));

/** Runs the helper on every job; a job that fails is a result with ok false, never an exception. */
export async function runExportHelper(python: string, jobs: ExportJob[]): Promise<ExportResult[]> {
  return runHelper<ExportResult>(python, jobs);
}

/** Runs the helper on any of its job kinds (see its docstring); one JSON result per job. */
export async function runHelper<R>(python: string, jobs: object[]): Promise<R[]> {
  const child = spawn(python, [EXPORT_HELPER], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  child.stdin.end(JSON.stringify(jobs));
  const code = await exited;
  const results = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as R);
  if (results.length !== jobs.length) {
    const tail = stderr.trim().split('\n').slice(-5).join('\n');
    throw new Error(
      `the export helper ${EXPORT_HELPER} stopped (exit code ${code}) after ${results.length} of ${jobs.length} models:\n${tail}`,
    );
  }
  return results;
}

/** The one-paragraph story of a failed export: what went wrong, then the underlying error. */
export function describeExportFailure(result: Extract<ExportResult, { ok: false }>): string {
  return `cannot convert to ${result.output}: ${result.message}\n  caused by ${result.error}`;
}

/** `NAME:SHAPE[:DTYPE]`, SHAPE like 1x3x224x224; the dtype defaults to float32. */
export function parseInputSpec(text: string): InputSpec {
  const parts = text.split(':');
  const [name, shapeText, dtype = 'float32'] = parts;
  if (parts.length < 2 || parts.length > 3 || name === '' || shapeText === '') {
    throw new Error(`expected NAME:SHAPE[:DTYPE] such as x:1x3x224x224 or ids:1x16:int64, got "${text}"`);
  }
  const shape = shapeText.split('x').map(Number);
  if (shape.some((dim) => !Number.isSafeInteger(dim) || dim < 1)) {
    throw new Error(
      `shape of input ${name} must be positive whole numbers joined by "x" (1x3x224x224), got "${shapeText}"`,
    );
  }
  if (!(TORCH_DTYPES as readonly string[]).includes(dtype)) {
    throw new Error(`dtype of input ${name} must be one of ${TORCH_DTYPES.join(', ')}, got "${dtype}"`);
  }
  return { name, shape, dtype: dtype as TorchDtype };
}

/** `NAME:AXIS:LABEL`, e.g. tokens:1:sequence: one more dynamic axis of an input or output. */
export function parseDynamicAxis(text: string): { name: string; axis: number; label: string } {
  const match = /^([^:]+):(\d+):([A-Za-z_][A-Za-z0-9_]*)$/.exec(text);
  if (match === null) throw new Error(`expected NAME:AXIS:LABEL such as tokens:1:sequence, got "${text}"`);
  return { name: match[1], axis: Number(match[2]), label: match[3] };
}

/**
 * Which Python runs the PyTorch export helper: `--python`, else ONNX_SERVE_PYTHON, else the first
 * of a few usual interpreters that can import torch and onnx. The first `python3` on PATH is often
 * a pyenv or venv interpreter without torch while the system one has it, so every candidate is tried.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PYTHON_CANDIDATES = ['python3', '/usr/bin/python3', 'python'];

export const INSTALL_TORCH_HINT =
  'install PyTorch and ONNX for Python (Debian/Ubuntu: sudo apt-get install python3-torch python3-torchvision python3-onnx; ' +
  'elsewhere: pip install torch torchvision onnx), or name an interpreter that has them with --python PATH or ONNX_SERVE_PYTHON';

export interface PythonInterpreter {
  path: string;
  torchVersion: string;
  onnxVersion: string;
  /** How it was chosen, for messages. */
  origin: '--python' | 'ONNX_SERVE_PYTHON' | 'search';
}

const PROBE = 'import torch, onnx; print(torch.__version__, onnx.__version__)';

/** Resolves the interpreter or throws an error that says how to install torch. */
export async function findPython(explicit?: string, env = process.env): Promise<PythonInterpreter> {
  const chosen = explicit ?? env.ONNX_SERVE_PYTHON;
  if (chosen !== undefined && chosen !== '') {
    const origin = explicit === undefined ? 'ONNX_SERVE_PYTHON' : '--python';
    const probe = await probePython(chosen);
    if ('problem' in probe)
      throw new Error(`${origin} ${chosen} cannot be used: ${probe.problem}; ${INSTALL_TORCH_HINT}`);
    return { path: chosen, ...probe, origin };
  }
  const problems: string[] = [];
  for (const candidate of PYTHON_CANDIDATES) {
    const probe = await probePython(candidate);
    if (!('problem' in probe)) return { path: candidate, ...probe, origin: 'search' };
    problems.push(`${candidate}: ${probe.problem}`);
  }
  throw new Error(`no Python interpreter with torch and onnx found (${problems.join('; ')}); ${INSTALL_TORCH_HINT}`);
}

async function probePython(path: string): Promise<{ torchVersion: string; onnxVersion: string } | { problem: string }> {
  try {
    const { stdout } = await run(path, ['-c', PROBE], { timeout: 60_000 });
    const [torchVersion, onnxVersion] = stdout.trim().split(/\s+/);
    return { torchVersion, onnxVersion };
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') return { problem: 'not found' };
    const lastLine = failure.stderr?.trim().split('\n').pop();
    return { problem: lastLine || failure.message };
  }
}

/**
 * The built command line refuses what it does not know, with a suggestion, and starts no server:
 * an unknown or mistyped command, a model path that does not exist. `serve` stays the default for
 * an option or a path that exists.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { writePassThroughModel } from '../helpers/onnx-builder.js';

const CLI = path.resolve('dist/cli/index.js');
const DEADLINE_MS = 60_000;

/** Runs the CLI to its exit (bounded); it must not start listening on the way. */
async function refused(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
  // 'close' waits for the output to be read to its end; 'exit' may come first.
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe('the command line refuses what it does not know', () => {
  let dir: string;
  let model: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-cli-args-'));
    model = path.join(dir, 'model.onnx');
    await writePassThroughModel(model, [{ input: 'x', output: 'y', datatype: 'FP32', shape: ['batch', 4] }]);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a mistyped command: the closest command, no server', async () => {
    const result = await refused(['inpsect', model]);
    assert.notEqual(result.code, 0);
    assert.equal(result.stderr, "onnx-serve: unknown command 'inpsect'; did you mean 'inspect'?\n");
    assert.equal(result.stdout, '');
  });

  it('an unknown command asked for help: an error, not serve’s help', async () => {
    const result = await refused(['frobnicate', '--help']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /^onnx-serve: unknown command 'frobnicate'; the commands are serve, inspect, /);
    assert.doesNotMatch(result.stdout + result.stderr, /Usage: onnx-serve serve/);
  });

  it('a model path that does not exist, first or after serve: the file next to it that it resembles', async () => {
    const typo = path.join(dir, 'modle.onnx');
    for (const args of [[typo], ['serve', typo, '--port', '0', '--grpc-port', '0']]) {
      const result = await refused(args);
      assert.notEqual(result.code, 0);
      assert.equal(result.stderr, `onnx-serve: model file '${typo}' does not exist; did you mean '${model}'?\n`);
    }
  });

  it('a missing model with nothing like it: says what to give instead', async () => {
    const result = await refused(['serve', path.join(dir, 'other', 'resnet.onnx')]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /does not exist; give the path of an \.onnx file, or --model-repository <dir>\n$/);
  });

  for (const [what, args] of [
    ['an existing path first', (file: string) => [file, '--port', '0', '--grpc-port', '0']],
    ['an option first', (file: string) => ['--port', '0', '--grpc-port', '0', file]],
  ] as const) {
    it(`${what}: serve, the default command`, async () => {
      const child = spawn(process.execPath, [CLI, ...args(model), '--log-format', 'json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
      try {
        let ready: { ready?: number; total?: number } | undefined;
        for await (const line of createInterface({ input: child.stdout })) {
          const event = JSON.parse(line) as { ready?: number; total?: number };
          if (event.ready !== undefined) {
            ready = event;
            break;
          }
        }
        assert.deepEqual(ready && { ready: ready.ready, total: ready.total }, { ready: 1, total: 1 });
      } finally {
        clearTimeout(timer);
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
    });
  }
});

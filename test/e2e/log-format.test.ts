/**
 * Log lines for whoever reads them: readable lines when stdout is a terminal, JSON lines otherwise
 * and whenever `--log-format json` says so. The terminal is a real pseudo-terminal (`script`), and
 * the command is the built CLI.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { usePrettyLogs } from '../../src/observability/logger.js';
import { writePassThroughModel } from '../helpers/onnx-builder.js';

const CLI = path.resolve('dist/cli/index.js');
const READY = /model version\(s\) ready/;
const DEADLINE_MS = 60_000;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

describe('log format', () => {
  let dir: string;
  let model: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-log-format-'));
    model = path.join(dir, 'identity.onnx');
    await writePassThroughModel(model, [{ input: 'x', output: 'y', datatype: 'FP32', shape: ['batch', 4] }]);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The server's output until it says it is ready, with stdout on a pseudo-terminal or a pipe. */
  async function serveUntilReady(terminal: boolean, extra: string[] = []): Promise<string[]> {
    const args = [CLI, 'serve', '--port', '0', '--grpc-port', '0', ...extra, model];
    const quoted = [process.execPath, ...args].map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(' ');
    const child = terminal
      ? spawn('script', ['-qefc', quoted, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`not ready within ${DEADLINE_MS} ms:\n${output}`)),
          DEADLINE_MS,
        );
        const take = (chunk: Buffer) => {
          output += chunk.toString('utf8');
          if (READY.test(output)) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on('data', take);
        child.stderr.on('data', take);
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`exited with ${code} before ready:\n${output}`));
        });
      });
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
    // Up to the ready line: what `script` prints when it is stopped is not the server's.
    const lines = output.replace(ANSI, '').split(/\r?\n/);
    return lines.slice(0, lines.findIndex((line) => READY.test(line)) + 1).filter((line) => line.trim() !== '');
  }

  it('decides: pretty for a terminal or when asked, JSON for a pipe or when asked', () => {
    assert.equal(usePrettyLogs('auto', true), true);
    assert.equal(usePrettyLogs('auto', false), false);
    assert.equal(usePrettyLogs('json', true), false);
    assert.equal(usePrettyLogs('pretty', false), true);
  });

  it('on a terminal: readable lines with a level word and the message, no JSON', async () => {
    const lines = await serveUntilReady(true);
    const listening = lines.find((line) => line.includes('onnx-serve listening on'));
    assert.ok(listening, lines.join('\n'));
    assert.match(listening, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*: onnx-serve listening on http:\/\/127\.0\.0\.1:\d+/);
    assert.ok(
      lines.every((line) => !line.startsWith('{')),
      lines.join('\n'),
    );
  });

  it('on a terminal with --log-format json: JSON lines', async () => {
    const lines = await serveUntilReady(true, ['--log-format', 'json']);
    const events = lines.map((line) => JSON.parse(line) as { level: number; msg: string });
    assert.ok(
      events.some((event) => event.level === 30 && event.msg.startsWith('onnx-serve listening on')),
      lines.join('\n'),
    );
  });

  it('into a pipe: JSON lines', async () => {
    const lines = await serveUntilReady(false);
    const events = lines.map((line) => JSON.parse(line) as { msg: string; service: string });
    assert.ok(events.length > 0);
    assert.ok(events.every((event) => event.service === 'onnx-serve'));
  });

  it('an unknown format is refused with the choices', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--log-format', 'yaml'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const code = await new Promise((resolve) => child.once('close', resolve));
    assert.notEqual(code, 0);
    assert.match(stderr, /--log-format.*expected one of auto, json, pretty, got "yaml"/);
  });
});

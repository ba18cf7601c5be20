/**
 * endLogs: the callback comes once every line is written, not while a write is still in flight
 * (pino's flush(cb) calls back at once with its default destination; serve exits on this callback,
 * so a line in flight could land after the last one).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { pino } from 'pino';
import { endLogs } from '../../src/observability/logger.js';

it('calls back after every line, the last one last, is in the file', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-logs-'));
  try {
    const file = path.join(dir, 'log.jsonl');
    const log = pino(pino.destination({ dest: file, sync: false, mkdir: true }));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the file is open
    for (let i = 0; i < 500; i++) log.info({ pad: 'x'.repeat(1000) }, `line ${i}`);
    log.info('last');
    const written = await new Promise<string[]>((resolve) => endLogs(log, () => resolve(readFileLines(file))));
    assert.equal(written.length, 501);
    assert.equal((JSON.parse(written.at(-1)!) as { msg: string }).msg, 'last');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('calls back at once for a logger whose destination is already ended', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'onnx-serve-logs-'));
  try {
    const log = pino(pino.destination({ dest: path.join(dir, 'log.jsonl'), sync: false }));
    await new Promise<void>((resolve) => endLogs(log, resolve));
    await new Promise<void>((resolve) => endLogs(log, resolve));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** What is in the file at the moment of the callback (read synchronously on purpose). */
function readFileLines(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
}

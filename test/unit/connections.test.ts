import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { connectionLimits, defaultMaxConnections } from '../../src/server/connections.js';

async function limitsFile(openFiles: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'onnx-serve-limits-')), 'limits');
  await writeFile(
    file,
    'Limit                     Soft Limit           Hard Limit           Units\n' +
      'Max processes             63432                63432                processes\n' +
      `Max open files            ${openFiles}                 files\n`,
  );
  return file;
}

it('the default connection cap is the soft open-files limit less 1/8 of it, at least 64', async () => {
  assert.equal(defaultMaxConnections(await limitsFile('1024                 1048576')), 896);
  assert.equal(defaultMaxConnections(await limitsFile('65536                65536')), 57344);
  assert.equal(defaultMaxConnections(await limitsFile('256                  4096')), 192);
  // Unknown (no /proc, or an unlimited soft limit): as for the usual 1024.
  assert.equal(defaultMaxConnections('/nonexistent/limits'), 896);
  assert.equal(defaultMaxConnections(await limitsFile('unlimited            unlimited')), 896);
});

it('a headers timeout longer than the request timeout is refused, naming both options', () => {
  assert.throws(() => connectionLimits({ headersTimeoutMs: 40_000, requestTimeoutMs: 30_000, maxConnections: 10 }), {
    name: 'RangeError',
    message:
      'the headers timeout (40 s, --headers-timeout-secs) must not be longer than the request timeout (30 s, --request-timeout-secs), which includes the headers',
  });
  assert.throws(() => connectionLimits({ maxConnections: 0 }), /maxConnections must be a positive number, got 0/);
  assert.deepEqual(connectionLimits({ maxConnections: 10 }), {
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    keepAliveTimeoutMs: 72_000,
    maxConnections: 10,
  });
});

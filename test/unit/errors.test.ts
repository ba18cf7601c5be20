import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { HTTP_STATUS, ServeError, toServeError, type ErrorCode } from '../../src/protocol/errors.js';

it('docs/errors.md lists exactly the codes of the catalogue, with the same statuses', () => {
  const table = new Map<string, number>();
  for (const match of readFileSync('docs/errors.md', 'utf8').matchAll(/^\| `([A-Z_]+)` +\| (\d{3}) +\|/gm)) {
    table.set(match[1], Number(match[2]));
  }
  assert.deepEqual(Object.fromEntries(table), { ...HTTP_STATUS });
});

it('a ServeError carries its code, status and Retry-After; anything else becomes INTERNAL', () => {
  const overloaded = new ServeError('OVERLOADED', 'queue full', { retryAfterSeconds: 2 });
  assert.equal(overloaded.status, 503);
  assert.equal(overloaded.retryAfterSeconds, 2);
  assert.equal(toServeError(overloaded), overloaded);
  const wrapped = toServeError(new Error('boom'));
  assert.equal(wrapped.code satisfies ErrorCode, 'INTERNAL');
  assert.equal(wrapped.message, 'boom');
  assert.equal(toServeError('text').message, 'text');
});

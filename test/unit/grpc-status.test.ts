import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { GRPC_STATUS, toGrpcError } from '../../src/grpc/status.js';
import { notFound, overloaded } from '../../src/protocol/errors.js';

it('docs/errors.md gives every code the gRPC status that src/grpc/status.ts maps it to', () => {
  const table = new Map<string, string>();
  for (const match of readFileSync('docs/errors.md', 'utf8').matchAll(
    /^\| `([A-Z_]+)` +\| \d{3} +\| `([A-Z_]+)` +\|/gm,
  )) {
    table.set(match[1], match[2]);
  }
  const mapped = Object.fromEntries(Object.entries(GRPC_STATUS).map(([code, grpc]) => [code, status[grpc]]));
  assert.deepEqual(Object.fromEntries(table), mapped);
});

it('an error becomes its status with the message as details; overload carries retry-after', () => {
  const missing = toGrpcError(notFound('unknown model "x"'));
  assert.equal(missing.code, status.NOT_FOUND);
  assert.equal(missing.details, 'unknown model "x"');
  assert.equal(missing.internal, false);
  const full = toGrpcError(overloaded('queue of m is full', 2));
  assert.equal(full.code, status.UNAVAILABLE);
  assert.deepEqual(full.metadata!.get('retry-after'), ['2']);
  const crash = toGrpcError(new Error('boom'));
  assert.equal(crash.code, status.INTERNAL);
  assert.equal(crash.details, 'boom');
  assert.equal(crash.internal, true);
});

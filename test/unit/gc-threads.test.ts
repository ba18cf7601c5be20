/**
 * The server tells whether node was started with V8's garbage collection on the collecting thread
 * alone (`--single-threaded-gc`, as `npm start` and the image run it): the startup line says so, and
 * says how to turn it on when it is off.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { collectsGarbageAlone } from '../../src/runtime/gc-threads.js';

it('sees --single-threaded-gc in either spelling, and --single-threaded, which implies it', () => {
  for (const flag of ['--single-threaded-gc', '--single_threaded_gc', '--single-threaded', '--single_threaded']) {
    assert.equal(collectsGarbageAlone(['--import', 'tsx', flag]), true, flag);
  }
});

it('is false without them, and for flags that only look alike', () => {
  assert.equal(collectsGarbageAlone([]), false);
  for (const flag of ['--no-single-threaded-gc', '--single-threaded-gc-foo', '--single-threaded-gc=false']) {
    assert.equal(collectsGarbageAlone([flag]), false, flag);
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairQueue } from '../../src/runtime/fair-queue.js';

/** Takes everything left, in the order the queue gives it. */
function drain<T>(queue: FairQueue<T>): T[] {
  const taken: T[] = [];
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) taken.push(item);
  return taken;
}

describe("a worker thread's line of runs", () => {
  it('is empty at first', () => {
    const queue = new FairQueue<string>();
    assert.equal(queue.shift(), undefined);
    assert.equal(queue.size, 0);
  });

  it('takes one key in arrival order', () => {
    const queue = new FairQueue<string>();
    for (const item of ['a1', 'a2', 'a3']) queue.push('a', item);
    assert.equal(queue.size, 3);
    assert.deepEqual(drain(queue), ['a1', 'a2', 'a3']);
    assert.equal(queue.size, 0);
  });

  it('takes turns between keys, first come first among keys never served', () => {
    const queue = new FairQueue<string>();
    for (const item of ['a1', 'a2', 'a3']) queue.push('a', item);
    queue.push('b', 'b1');
    queue.push('c', 'c1');
    queue.push('b', 'b2');
    assert.deepEqual(drain(queue), ['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
  });

  it('puts a key that comes back after the key that was served since', () => {
    const queue = new FairQueue<string>();
    queue.push('probe', 'p1');
    queue.push('flood', 'f1');
    assert.deepEqual(drain(queue), ['p1', 'f1']);
    // The flood arrives first this time, but it was served after the probe: the probe goes first.
    queue.push('flood', 'f2');
    queue.push('probe', 'p2');
    queue.push('flood', 'f3');
    assert.deepEqual(drain(queue), ['p2', 'f2', 'f3']);
  });

  it('a new key goes before keys already served', () => {
    const queue = new FairQueue<string>();
    queue.push('flood', 'f1');
    queue.push('flood', 'f2');
    assert.equal(queue.shift(), 'f1');
    queue.push('probe', 'p1');
    assert.deepEqual(drain(queue), ['p1', 'f2']);
  });

  it('forgets a released key, but not one with items still waiting', () => {
    const queue = new FairQueue<string>();
    queue.push('a', 'a1');
    queue.push('b', 'b1');
    queue.push('b', 'b2');
    assert.equal(queue.shift(), 'a1');
    assert.equal(queue.shift(), 'b1');
    queue.forget('b');
    queue.forget('a');
    // a counts as never served again, so it goes before b, whose waiting item was kept with its turn.
    queue.push('a', 'a2');
    assert.deepEqual(drain(queue), ['a2', 'b2']);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool, freeNow, isPoolSize, isSurrendered, MAX_POOLED_BYTES } from '../../src/runtime/buffer-pool.js';

describe('BufferPool', () => {
  it('hands out a power of two from 16 KiB to 4 MiB, transferable, and nothing outside 4 KiB–4 MiB', () => {
    const pool = new BufferPool();
    assert.equal(pool.take(4095), undefined);
    assert.equal(pool.take(4 * 1024 * 1024 + 1), undefined);
    assert.equal(pool.take(4096)!.byteLength, 16 * 1024);
    const body = pool.take(110_000)!;
    assert.equal(body.byteLength, 128 * 1024);
    assert.ok(isSurrendered(body));
    assert.equal(pool.take(4 * 1024 * 1024)!.byteLength, 4 * 1024 * 1024);
    assert.deepEqual([16 * 1024, 100_000, 0, 8 * 1024 * 1024].map(isPoolSize), [true, false, false, false]);
  });

  it('hands a released buffer out again, once, however often it was given back', () => {
    const pool = new BufferPool();
    const first = pool.take(100_000)!;
    pool.release(first);
    pool.release(first);
    assert.equal(pool.take(100_000), first);
    assert.notEqual(pool.take(100_000), first);
    assert.equal(pool.reused, 1);
  });

  it('releases only its own buffers; detached ones and other sizes are dropped', () => {
    const pool = new BufferPool();
    // Memory the pool did not make (a Buffer slab, a caller's array) may still be in use.
    const foreign = new ArrayBuffer(16 * 1024);
    pool.release(foreign);
    assert.notEqual(pool.take(16 * 1024), foreign);
    // Handed to a worker by transfer: detached, nothing to keep.
    const sent = pool.take(16 * 1024)!;
    structuredClone(sent, { transfer: [sent] });
    pool.release(sent);
    assert.notEqual(pool.take(16 * 1024), sent);
  });

  it('keeps what comes back by transfer when its size is a class, up to MAX_POOLED_BYTES', () => {
    const pool = new BufferPool();
    const back = new ArrayBuffer(64 * 1024);
    pool.recycle(back);
    pool.recycle(new ArrayBuffer(100_000)); // not a class size
    assert.equal(pool.take(40_000), back);
    const big = 4 * 1024 * 1024;
    const count = MAX_POOLED_BYTES / big;
    for (let i = 0; i <= count; i++) pool.recycle(new ArrayBuffer(big));
    let handedOut = 0;
    while (pool.reused < 1 + count + 1 && handedOut <= count + 1) {
      pool.take(big);
      handedOut++;
    }
    assert.equal(pool.reused, 1 + count, 'one over the cap was dropped');
  });
});

describe('freeNow', () => {
  // ArrayBuffer.prototype.transfer: Node 22 and 24 have it, Node 20 does not.
  const canFree = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';

  it(`${canFree ? 'frees' : 'leaves whole, for the collector,'} the buffers it is given on Node ${process.versions.node}`, () => {
    const buffer = new ArrayBuffer(1 << 20);
    const view = new Float32Array(buffer);
    freeNow([buffer, undefined]);
    assert.equal(buffer.byteLength, canFree ? 0 : 1 << 20);
    assert.equal(view.length, canFree ? 0 : 1 << 18);
  });

  it('passes over a buffer sent away already and a shared one', () => {
    const sent = new ArrayBuffer(64);
    structuredClone(sent, { transfer: [sent] });
    const shared = new SharedArrayBuffer(64);
    assert.doesNotThrow(() => freeNow([sent, shared]));
    assert.equal(shared.byteLength, 64);
  });
});

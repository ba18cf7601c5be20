import assert from 'node:assert/strict';
import { ServeError } from '../../src/protocol/errors.js';

/**
 * Asserts that `run` throws an INVALID_ARGUMENT ServeError whose message contains `fragment`
 * (or equals it exactly, with `{ exact: true }`).
 */
export function assertInvalid(run: () => unknown, fragment: string, options: { exact?: boolean } = {}): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ServeError, `expected a ServeError, got ${String(error)}`);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    if (options.exact === true) assert.equal(error.message, fragment);
    else {
      assert.ok(
        error.message.includes(fragment),
        `message ${JSON.stringify(error.message)} lacks ${JSON.stringify(fragment)}`,
      );
    }
    return true;
  });
}

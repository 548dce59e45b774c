// Checking that difface refuses something with the right DifFaceError.
import { strict as assert } from 'node:assert';

import { DifFaceError } from 'difface';
import type { ErrorCode } from 'difface';

/** Asserts that `promise` rejects with a DifFaceError of `code` (and a message matching `pattern`); returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, pattern?: RegExp): Promise<DifFaceError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DifFaceError, `expected a DifFaceError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected a rejection with ${code}`);
}

// Error codes are written once, in ERROR_CODES: what the native layer and the converter raise
// must be in that list, and the README must document every code in it.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ERROR_CODES } from 'difface';

import { repoRoot } from './helpers/env';

function codesIn(file: string, pattern: RegExp): string[] {
  const text = fs.readFileSync(path.join(repoRoot, file), 'utf8');
  return [...new Set([...text.matchAll(pattern)].map((match) => match[1] as string))];
}

describe('error codes', function () {
  it('holds every code the native layer raises', function () {
    const native = codesIn('cpp/errors.h', /= "(E[A-Z]+)"/g);
    assert.ok(native.length >= 8, `found ${native.join(', ')}`);
    for (const code of native) assert.ok(code in ERROR_CODES, `${code} (cpp/errors.h) is not in ERROR_CODES`);
  });

  it('holds every code the converter raises', function () {
    const python = codesIn('models/errors.py', /"(E[A-Z]+)"/g).concat(
      ...['models/checkpoint.py', 'models/config.py', 'models/convert.py', 'models/networks.py']
        .map((file) => codesIn(file, /ConvertError\("(E[A-Z]+)"/g)));
    assert.ok(python.length >= 4, `found ${python.join(', ')}`);
    for (const code of python) assert.ok(code in ERROR_CODES, `${code} (models/) is not in ERROR_CODES`);
  });

  it('is documented in the README, code by code', function () {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    for (const code of Object.keys(ERROR_CODES)) assert.match(readme, new RegExp(`\`${code}\``), `${code} is not in the README`);
  });
});

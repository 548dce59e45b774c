// The native checkpoint reader: every form published checkpoints come in reads exactly what
// torch.load(weights_only=True) reads, and hostile or damaged files are refused with
// ECHECKPOINT without running anything.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { readCheckpoint } from 'difface';

import { runPython, tempDir, testPyDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';

interface ExpectedTensor {
  name: string;
  dtype: string;
  shape: number[];
  values: number[];
}

const RULES = { unwrap: ['state_dict', 'params_ema', 'params'], stripPrefix: 'module.' };

describe('the native checkpoint reader', function () {
  let dir: string;
  let expected: Record<string, ExpectedTensor[]>;

  before(function () {
    dir = tempDir('variants');
    runPython(path.join(testPyDir, 'checkpoint_variants.py'), [dir]);
    expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, ExpectedTensor[]>;
  });

  it('reads every published form as torch.load does: zip and legacy, protocols 2 to 5, wrapped, DDP, views, dtypes, cuda:0', async function () {
    const cases = Object.keys(expected);
    assert.ok(cases.length >= 20, `only ${cases.length} cases`);
    for (const name of cases) {
      const read = await readCheckpoint(path.join(dir, `${name}.pth`), RULES);
      const want = expected[name] ?? [];
      assert.deepEqual([...read.keys()], want.map((t) => t.name), name);
      for (const tensor of want) {
        const entry = read.get(tensor.name);
        assert.ok(entry !== undefined);
        assert.equal(entry.storedDtype, tensor.dtype, `${name}: ${tensor.name}`);
        assert.deepEqual(entry.tensor.shape, tensor.shape, `${name}: ${tensor.name}`);
        const values = Array.from(await entry.tensor.toFloat32());
        // float32 holds every stored value of these tensors exactly (float64 ones are k/2).
        assert.deepEqual(values, tensor.values.map((v) => Math.fround(v)), `${name}: ${tensor.name}`);
        entry.tensor.dispose();
      }
    }
  });

  it('keeps the names as they are without rules, and unwraps only the keys it is given', async function () {
    const raw = await readCheckpoint(path.join(dir, 'ddp.pth'));
    assert.ok([...raw.keys()].every((name) => name.startsWith('module.')));
    for (const entry of raw.values()) entry.tensor.dispose();
    await rejectsWith(readCheckpoint(path.join(dir, 'wrapped_ddp.pth')), 'ECHECKPOINT', /not tensors.*state_dict/);
  });

  it('refuses a pickle that would run code, naming what it found, and runs nothing', async function () {
    await rejectsWith(readCheckpoint(path.join(dir, 'evil_reduce.pth'), RULES), 'ECHECKPOINT',
      /evil_reduce\.pth.*(posix|os)\.system, which could run code/);
    await rejectsWith(readCheckpoint(path.join(dir, 'evil_builtins.pth'), RULES), 'ECHECKPOINT', /builtins\.eval/);
    await rejectsWith(readCheckpoint(path.join(dir, 'newobj.pth'), RULES), 'ECHECKPOINT', /collections\.Counter/);
    assert.equal(fs.existsSync(path.join(dir, 'code-ran')), false);
  });

  it('refuses damaged files: sizes beyond the file, views beyond their storage, truncation, garbage', async function () {
    await rejectsWith(readCheckpoint(path.join(dir, 'huge_storage.pth'), RULES), 'ECHECKPOINT', /storage '0' of 1073741824 values, more than the file holds/);
    await rejectsWith(readCheckpoint(path.join(dir, 'overreach.pth'), RULES), 'ECHECKPOINT', /reaches past the end of its storage/);
    await rejectsWith(readCheckpoint(path.join(dir, 'truncated.pth'), RULES), 'ECHECKPOINT', /truncated\.pth.*damaged zip archive/);
    await rejectsWith(readCheckpoint(path.join(dir, 'garbage.pth'), RULES), 'ECHECKPOINT', /neither a zip archive nor a legacy torch\.save file/);
    await rejectsWith(readCheckpoint(path.join(dir, 'absent.pth'), RULES), 'ECHECKPOINT', /cannot be opened/);
  });

  it('walks deeply nested containers without recursing, and says what the file holds instead of weights', async function () {
    await rejectsWith(readCheckpoint(path.join(dir, 'nested.pth'), RULES), 'ECHECKPOINT', /holds a list where a dict of weights should be/);
    await rejectsWith(readCheckpoint(path.join(dir, 'list_top.pth'), RULES), 'ECHECKPOINT', /holds a list/);
    await rejectsWith(readCheckpoint(path.join(dir, 'not_tensors.pth'), { stripPrefix: 'module.' }), 'ECHECKPOINT',
      /entries that are not tensors where the weights should be: state_dict, optimizer/);
    await rejectsWith(readCheckpoint(path.join(dir, 'unwrap_target.pth'), { unwrap: ['w'] }), 'ECHECKPOINT',
      /has 'w' but it holds a single tensor, not a dict of weights/);
  });

  it('checks its arguments before reading', async function () {
    await rejectsWith(readCheckpoint(''), 'EARG');
    await rejectsWith(readCheckpoint(path.join(dir, 'zip.pth'), { unwrap: 'state_dict' as unknown as string[] }), 'EARG');
  });
});

// DifFace.load() on model directories that are missing, incomplete, corrupt or inconsistent:
// each gives EMODELDIR with a message that names the directory and the problem.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace } from 'difface';

import { tempDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';
import { smallModelDir } from './helpers/fixtures';

async function loadFails(dir: string, pattern: RegExp): Promise<void> {
  const error = await rejectsWith(DifFace.load(dir).then((engine) => engine.dispose()), 'EMODELDIR');
  assert.ok(error.message.includes(dir), error.message);
  assert.match(error.message, pattern);
}

/** A copy of the converted small model directory, changed by `edit`. */
async function variant(edit: (dir: string) => void): Promise<string> {
  const source = await smallModelDir();
  const dir = path.join(tempDir('modeldir'), 'models');
  fs.cpSync(source, dir, { recursive: true });
  edit(dir);
  return dir;
}

function editCard(dir: string, change: (card: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'difface.json');
  const card = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  change(card);
  fs.writeFileSync(file, JSON.stringify(card));
}

describe('bad model directories', function () {
  it('a directory that does not exist', async function () {
    await loadFails(path.join(tempDir('nodir'), 'absent'), /does not exist.*difface convert/);
  });

  it('a directory without a model card', async function () {
    await loadFails(tempDir('empty'), /difface\.json is missing/);
  });

  it('a model card that is not JSON', async function () {
    await loadFails(await variant((dir) => fs.writeFileSync(path.join(dir, 'difface.json'), '{"format": ')), /not valid JSON/);
  });

  it('a model card of another format or version', async function () {
    await loadFails(await variant((dir) => editCard(dir, (card) => { card.format = 'other'; })), /not a difface model card/);
    await loadFails(await variant((dir) => editCard(dir, (card) => { card.version = 99; })), /version 99/);
  });

  it('a missing network file', async function () {
    await loadFails(await variant((dir) => fs.rmSync(path.join(dir, 'unet.pt'))), /unet file unet\.pt .* is missing/);
  });

  it('a truncated network file', async function () {
    await loadFails(await variant((dir) => {
      const file = path.join(dir, 'backbone.pt');
      fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 5000));
    }), /backbone file backbone\.pt has 5000 bytes .* truncated/);
  });

  it('a corrupt network file that the card was edited to match', async function () {
    await loadFails(await variant((dir) => {
      fs.writeFileSync(path.join(dir, 'unet.pt'), Buffer.alloc(1234, 7));
      editCard(dir, (card) => { (card.unet as Record<string, unknown>).bytes = 1234; });
    }), /not a TorchScript export/);
  });

  it('network files swapped with each other', async function () {
    await loadFails(await variant((dir) => {
      fs.renameSync(path.join(dir, 'unet.pt'), path.join(dir, 'tmp.pt'));
      fs.renameSync(path.join(dir, 'backbone.pt'), path.join(dir, 'unet.pt'));
      fs.renameSync(path.join(dir, 'tmp.pt'), path.join(dir, 'backbone.pt'));
    }), /bytes but difface\.json says/);
  });

  it('a schedule the engine cannot build', async function () {
    await loadFails(await variant((dir) => editCard(dir, (card) => {
      (card.schedule as Record<string, unknown>).respacing = 'ddim7777';
    })), /ddim7777/);
  });
});

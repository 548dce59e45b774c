// `difface inpaint` as a user runs it, on the small random inpainting networks: the two
// published test faces with black holes, mask files, and bad input (a face with no hole, a
// mask of another size, all-hole and no-hole masks, a grey image, an image that is no face).
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

import { demoModelsDir, faceFindingAvailable } from 'difface';

import { imagesDir, repoRoot, tempDir } from './helpers/env';
import { smallInpainting } from './helpers/fixtures';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const cli = path.join(repoRoot, 'dist', 'cli.js');
const testFaces = ['269', '321'].map((name) => path.join(imagesDir, 'inpainting', `${name}.png`));

function difface(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, DIFFACE_INPAINTING_MODELS: '', XDG_CACHE_HOME: tempDir('cache') },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function raw(file: string): Promise<{ data: Buffer; channels: number; width: number; height: number }> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { data, channels: info.channels, width: info.width, height: info.height };
}

/** A mask image: white inside the rectangle [top, bottom) x [left, right), black elsewhere. */
async function maskFile(file: string, side: number, box: [number, number, number, number] | 'all' | 'none'): Promise<string> {
  const pixels = Buffer.alloc(side * side, box === 'all' ? 255 : 0);
  if (Array.isArray(box)) {
    const [top, bottom, left, right] = box;
    for (let y = top; y < bottom; y++) pixels.fill(255, y * side + left, y * side + right);
  }
  await sharp(pixels, { raw: { width: side, height: side, channels: 1 } }).png().toFile(file);
  return file;
}

/** An image with a black rectangle, from a source image or from noise. */
async function withHole(file: string, source: Buffer, side: number, channels: 1 | 3): Promise<string> {
  const pixels = Buffer.from(source);
  for (let y = 80; y < 150; y++) pixels.fill(0, (y * side + 60) * channels, (y * side + 190) * channels);
  const image = sharp(pixels, { raw: { width: side, height: side, channels } });
  await (channels === 1 ? image.toColourspace('b-w') : image).png().toFile(file);
  return file;
}

describe('difface inpaint', function () {
  let models: string;
  let face: Buffer;

  before(async function () {
    models = (await smallInpainting()).out;
    face = await sharp(path.join(imagesDir, 'aligned', '0143.png')).resize(256, 256).removeAlpha().raw().toBuffer();
  });

  it('fills the black holes of the two published test faces, keeping every known pixel', async function () {
    const out = path.join(tempDir('inpaint'), 'out');
    const run = await difface(['inpaint', ...testFaces, '-o', out, '--models', models, '--seed', '1',
      '--start-step', '6', '--compare', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as { seed: string; results: { input: string; output: string; holes: { fraction: number } }[] };
    assert.equal(summary.seed, '1');
    assert.deepEqual(summary.results.map((r) => path.basename(r.output)), ['269.png', '321.png']);
    for (const [i, input] of testFaces.entries()) {
      const before = await raw(input);
      const after = await raw(path.join(out, path.basename(input)));
      assert.deepEqual([after.width, after.height, after.channels], [256, 256, 3]);
      let holes = 0;
      let filled = 0;
      for (let p = 0; p < 256 * 256; p++) {
        const at = 3 * p;
        const black = before.data[at] === 0 && before.data[at + 1] === 0 && before.data[at + 2] === 0;
        if (black) {
          holes++;
          if (after.data[at] !== 0 || after.data[at + 1] !== 0 || after.data[at + 2] !== 0) filled++;
        } else {
          assert.deepEqual([...after.data.subarray(at, at + 3)], [...before.data.subarray(at, at + 3)]);
        }
      }
      assert.ok(Math.abs(holes / 65536 - (summary.results[i]?.holes.fraction ?? -1)) < 1e-9);
      assert.ok(filled > 0.9 * holes, `${filled} of ${holes} hole pixels filled`);
      assert.ok(fs.existsSync(path.join(out, `${path.basename(input, '.png')}.compare.png`)));
    }
  });

  it('takes the holes from a mask file, and refuses masks of another size or with no hole', async function () {
    const dir = tempDir('masks');
    const input = await withHole(path.join(dir, 'face.png'), face, 256, 3);
    const box = await maskFile(path.join(dir, 'box.png'), 256, [10, 60, 20, 120]);
    const out = path.join(dir, 'out');
    const run = await difface(['inpaint', input, '--mask', box, '-o', out, '--models', models, '--seed', '2', '--start-step', '4']);
    assert.equal(run.code, 0, run.stderr);
    const before = await raw(input);
    const after = await raw(path.join(out, 'face.png'));
    let changedOutside = 0;
    let changedInside = 0;
    for (let y = 0; y < 256; y++) {
      for (let x = 0; x < 256; x++) {
        const at = 3 * (y * 256 + x);
        const changed = after.data.compare(before.data, at, at + 3, at, at + 3) !== 0;
        const inside = y >= 10 && y < 60 && x >= 20 && x < 120;
        if (changed && inside) changedInside++;
        if (changed && !inside) changedOutside++;
      }
    }
    assert.equal(changedOutside, 0, 'the black rectangle is no hole when a mask says where the holes are');
    assert.ok(changedInside > 0.9 * 50 * 100);

    const small = await maskFile(path.join(dir, 'small.png'), 128, [0, 10, 0, 10]);
    const wrong = await difface(['inpaint', input, '--mask', small, '-o', out, '--models', models]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /small\.png is 128 x 128 but .*face\.png is 256 x 256; a mask must have its image's size \[EARG\]/);

    const none = await maskFile(path.join(dir, 'none.png'), 256, 'none');
    const empty = await difface(['inpaint', input, '--mask', none, '-o', out, '--models', models]);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /none\.png has no hole: nothing to inpaint/);
  });

  it('runs an all-hole mask with a warning, and a folder of masks named as the inputs', async function () {
    const dir = tempDir('all-hole');
    const inputs = path.join(dir, 'in');
    const masks = path.join(dir, 'masks');
    fs.mkdirSync(inputs);
    fs.mkdirSync(masks);
    await withHole(path.join(inputs, 'a.png'), face, 256, 3);
    await withHole(path.join(inputs, 'b.png'), face, 256, 3);
    await maskFile(path.join(masks, 'a.png'), 256, 'all');
    const run = await difface(['inpaint', inputs, '--masks', masks, '-o', path.join(dir, 'out'), '--models', models,
      '--start-step', '3', '--json']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /warning: .*a\.png: the whole image is a hole/);
    assert.match(run.stderr, /b\.png: .*masks holds no mask named b/);
    assert.ok(fs.existsSync(path.join(dir, 'out', 'a.png')));
    assert.ok(!fs.existsSync(path.join(dir, 'out', 'b.png')));
  });

  it('fails a face with no hole by name, keeps a grey image grey, and warns about an image with no face', async function () {
    const dir = tempDir('bad');
    const grey = await sharp(face, { raw: { width: 256, height: 256, channels: 3 } }).greyscale().raw().toBuffer();
    await withHole(path.join(dir, 'grey.png'), grey, 256, 1);
    const noise = Buffer.alloc(256 * 256 * 3);
    for (let i = 0; i < noise.length; i++) noise[i] = 1 + ((i * 2654435761) >>> 24) % 254;
    await withHole(path.join(dir, 'noise.png'), noise, 256, 3);
    await sharp(face, { raw: { width: 256, height: 256, channels: 3 } }).png().toFile(path.join(dir, 'whole.png'));
    const run = await difface(['inpaint', dir, '-o', path.join(dir, 'out'), '--models', models, '--start-step', '3']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /whole\.png has no hole: nothing to inpaint; no pixel is exactly black in all three channels; give a mask image \(white = hole\) \[EARG\]/);
    assert.equal((await sharp(path.join(dir, 'out', 'grey.png')).metadata()).channels, 1);
    assert.ok(fs.existsSync(path.join(dir, 'out', 'noise.png')));
    if (faceFindingAvailable().available) {
      assert.match(run.stderr, /warning: .*noise\.png: no face was found in it, before or after inpainting/);
    }
  });

  it('says how to get inpainting models when none are given or the models restore, and refuses --mask with --masks', async function () {
    const out = path.join(tempDir('none'), 'out');
    const missing = await difface(['inpaint', testFaces[0] as string, '-o', out]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no inpainting models in .*; get the published ones with 'difface models fetch --only inpainting', or give --models DIR/);
    const restoration = await difface(['inpaint', testFaces[0] as string, '-o', out, '--models', demoModelsDir()]);
    assert.equal(restoration.code, 1);
    assert.match(restoration.stderr, /holds networks for restoration, not inpainting; give --models an inpainting model directory/);
    const both = await difface(['inpaint', testFaces[0] as string, '-o', out, '--mask', 'a.png', '--masks', 'dir']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give either --mask .* or --masks/);
  });
});

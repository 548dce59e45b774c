// The published face-parsing paste mask: ParseNet shipped weight-less and filled natively from
// random weights in the layout of parsing_parsenet.pth computes what the project's eager
// network computes (test/py/parsing_reference.py); label scores become the published mask
// (checked against a numpy version written from the helper's description); faces are pasted
// under the lower of the two masks, blended on 8-bit levels and truncated; whole photos use
// the mask when its weights are there and say so, and fall back to the square when not.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';

import { DifFace, DifFaceError, Tensor, demoModelsDir } from 'difface';

import { imagesDir, repoRoot, runPython, tempDir, testPyDir } from './helpers/env';
import { skipWithoutFaceFinding } from './helpers/faces';
import { readNpy } from './helpers/npy';
import { toTensor, valuesOf } from './helpers/tensors';

function largestDifference(got: Float32Array, expected: Float32Array): number {
  assert.equal(got.length, expected.length);
  let max = 0;
  for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs((got[i] as number) - (expected[i] as number)));
  return max;
}

function copyDemoModels(into: string): void {
  for (const file of fs.readdirSync(demoModelsDir())) fs.copyFileSync(path.join(demoModelsDir(), file), path.join(into, file));
}

describe('the face-parsing paste mask', function () {
  let reference: string;
  let modelDir: string;
  let engine: DifFace;

  before(async function () {
    reference = tempDir('parsing');
    runPython(path.join(testPyDir, 'parsing_reference.py'), [reference]);
    modelDir = tempDir('parsing-models');
    copyDemoModels(modelDir);
    fs.copyFileSync(path.join(reference, 'parsing_parsenet.pth'), path.join(modelDir, 'parsing_parsenet.pth'));
    engine = await DifFace.load(modelDir);
  });
  after(function () {
    engine?.dispose();
  });

  it('parses a face as the eager ParseNet does, within 1e-4', async function () {
    assert.equal(engine.parserAvailable, true);
    const expected = readNpy(path.join(reference, 'scores.npy'));
    using face = toTensor(readNpy(path.join(reference, 'face.npy')));
    using scores = await engine.parseFaces(face);
    assert.deepEqual(scores.shape, [1, 19, 512, 512]);
    const difference = largestDifference(await scores.toFloat32(), expected.data);
    assert.ok(difference <= 1e-4, `largest difference ${difference}`);
  });

  it('makes the published mask of label scores: face labels, two wide blurs, a zero border', async function () {
    const expected = readNpy(path.join(reference, 'crafted_mask.npy'));
    using scores = toTensor(readNpy(path.join(reference, 'crafted.npy')));
    const got = await valuesOf(engine.faceMasks(scores));
    const difference = largestDifference(got, expected.data);
    assert.ok(difference <= 1e-6, `largest difference ${difference}`);
    // Not a trivial mask: it has both face and not-face, and the blur leaves no hard edge.
    assert.ok(expected.data.some((v) => v > 0.8) && expected.data.some((v, i) => v === 0 && i > 128 * 20));
    await assert.rejects(engine.faceMasks(Tensor.fromFloat32(new Float32Array(18 * 32 * 32), [1, 18, 32, 32])),
      (error: DifFaceError) => error.code === 'EARG');
  });

  it('pastes under the lower of the square and the parse mask, blending on 8-bit levels and truncating', async function () {
    const [width, height, side] = [800, 700, 512];
    const canvas = Tensor.fromFloat32(new Float32Array(3 * width * height).fill(51 / 255), [1, 3, height, width]);
    const face = Tensor.fromFloat32(new Float32Array(3 * side * side).fill(200 / 255), [1, 3, side, side]);
    // The left half of the face at 0.3, the right half at 0.9.
    const maskValues = new Float32Array(side * side);
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) maskValues[y * side + x] = x < side / 2 ? 0.3 : 0.9;
    const mask = Tensor.fromFloat32(maskValues, [1, 1, side, side]);
    const map = [1, 0, -100, 0, 1, -80];  // the face's square from (100, 80), at the photo's scale
    try {
      const withMask = await valuesOf(engine.pasteFaces(canvas, [face], [map], 1, [mask]));
      const square = await valuesOf(engine.pasteFaces(canvas, [face], [map], 1));
      const level = (values: Float32Array, x: number, y: number) => Math.round((values[y * width + x] as number) * 255);
      // Deep inside the square its mask is 1, so the parse mask decides: 0.3 * 200 + 0.7 * 51
      // is 95.7, which the published helper truncates to 95; 0.9 * 200 + 0.1 * 51 is 185.1.
      assert.equal(level(withMask, 100 + 128, 80 + 256), 95);
      assert.equal(level(withMask, 100 + 384, 80 + 256), 185);
      assert.equal(level(square, 100 + 128, 80 + 256), 200);
      // Outside the face's square both leave the canvas as it was, to the level.
      assert.equal(level(withMask, 50, 50), 51);
      assert.equal(level(withMask, 700, 650), 51);
      await assert.rejects(async () => engine.pasteFaces(canvas, [face], [map], 1, []),
        (error: DifFaceError) => error.code === 'EARG' && /parseMasks/.test(error.message));
      using small = Tensor.fromFloat32(new Float32Array(64 * 64), [1, 1, 64, 64]);
      await assert.rejects(async () => engine.pasteFaces(canvas, [face], [map], 1, [small]),
        (error: DifFaceError) => error.code === 'EARG' && /parse mask/.test(error.message));
    } finally {
      for (const t of [canvas, face, mask]) t.dispose();
    }
  });

  it('names the command that fetches the weights when they are not in the model directory', async function () {
    const bare = await DifFace.load(demoModelsDir());
    try {
      assert.equal(bare.parserAvailable, false);
      using face = Tensor.fromFloat32(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);
      await assert.rejects(bare.parseFaces(face), (error: DifFaceError) =>
        error.code === 'EMODELDIR' && error.message.includes('difface models fetch --only photos') && error.message.includes('--paste square'));
    } finally {
      bare.dispose();
    }
  });

  describe('in whole photos', function () {
    const portrait = path.join(imagesDir, 'whole', '04.jpg');

    before(function () {
      skipWithoutFaceFinding(this);
    });

    it('is the default when its weights are there, the square otherwise, and the result says which ran', async function () {
      const parsed = await engine.restorePhoto(portrait, { seed: 1, format: 'png' });
      const square = await engine.restorePhoto(portrait, { seed: 1, format: 'png', paste: 'square' });
      assert.deepEqual([parsed.info.paste, square.info.paste], ['parse', 'square']);
      assert.deepEqual(parsed.faces.map((f) => f.box), square.faces.map((f) => f.box));
      const [a, b] = await Promise.all([parsed.image, square.image].map((image) => sharp(image).raw().toBuffer()));
      assert.ok(a !== undefined && b !== undefined && a.length === b.length);
      // The random parser calls almost everything one face label, so the two masks differ
      // only where the parse mask's blur and zero border fall inside the square's.
      let differing = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differing++;
      assert.ok(differing > 0, 'the parse mask changed the paste');
      await assert.rejects(engine.restorePhoto(portrait, { paste: 'hair' as 'parse' }),
        (error: DifFaceError) => error.code === 'EARG' && /paste/.test(error.message));
    });

    it('falls back to the square without the weights, and the CLI and its JSON say so', function () {
      const out = tempDir('parsing-cli');
      const result = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'restore', portrait, '-o', out,
        '--models', demoModelsDir(), '--json', '--seed', '1', '--background', 'lanczos'], { encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stderr, /square mask, Lanczos background \(.*parsing_parsenet\.pth.* not in .*difface models fetch --only photos/);
      const summary = JSON.parse(result.stdout) as { results: { path: { paste: string } }[] };
      assert.equal(summary.results[0]?.path.paste, 'square');
      const refused = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'restore', portrait, '-o', out,
        '--models', demoModelsDir(), '--paste', 'hair'], { encoding: 'utf8' });
      assert.equal(refused.status, 2);
      assert.match(refused.stderr, /paste/);
      const missing = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'restore', portrait, '-o', out,
        '--models', demoModelsDir(), '--paste', 'parse', '--json'], { encoding: 'utf8' });
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /parsing_parsenet\.pth.*difface models fetch --only photos/);
    });

    it('with publishedQuirks, enlarges a photo whose short side is under 512 first, as the published tool does', async function () {
      // A featureless 248 x 189 photo: no face, so the whole path is the enlargement and the background.
      const flat = await sharp({ create: { width: 248, height: 189, channels: 3, background: '#808890' } }).png().toBuffer();
      const quirky = await engine.restorePhoto(flat, { publishedQuirks: true, background: 'lanczos', format: 'png' });
      assert.deepEqual([quirky.info.width, quirky.info.height, quirky.info.publishedQuirks], [1344, 1024, true]);
      const plain = await engine.restorePhoto(flat, { background: 'lanczos', format: 'png' });
      assert.deepEqual([plain.info.width, plain.info.height, plain.info.publishedQuirks], [496, 378, false]);
      const pixels = await sharp(quirky.image).raw().toBuffer();
      assert.deepEqual([pixels[0], pixels[1], pixels[2]], [0x80, 0x88, 0x90]);
      await assert.rejects(engine.restorePhoto(flat, { publishedQuirks: 'yes' as unknown as boolean }),
        (error: DifFaceError) => error.code === 'EARG' && /publishedQuirks/.test(error.message));
    });
  });
});

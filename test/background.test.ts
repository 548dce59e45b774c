// The Real-ESRGAN background: RRDBNet x2 shipped weight-less, filled natively from random
// weights in the layout of RealESRGAN_x2plus.pth, upscales a small odd-sized photo tile by
// tile as the published upsampler does (the reference is test/py/background_reference.py on
// the project's eager network); whole photos use it when its weights are in the model
// directory and say so, and fall back to Lanczos, saying that too, when they are not.
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

// Odd on both sides (the engine pads to even by reflection), and several tiles each way.
const HEIGHT = 21;
const WIDTH = 27;
const TILE = 8;
const PAD = 4;
const LSB = 1 / 255;

/** Differences in 8-bit levels: the largest, and how many values differ at all. */
function levels(got: Float32Array, expected: Float32Array): { max: number; differing: number } {
  assert.equal(got.length, expected.length);
  let max = 0;
  let differing = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.round(Math.abs((got[i] as number) - (expected[i] as number)) / LSB);
    if (d > 0) differing++;
    max = Math.max(max, d);
  }
  return { max, differing };
}

function copyDemoModels(into: string): void {
  for (const file of fs.readdirSync(demoModelsDir())) fs.copyFileSync(path.join(demoModelsDir(), file), path.join(into, file));
}

describe('the Real-ESRGAN background', function () {
  let reference: string;
  let modelDir: string;
  let engine: DifFace;

  before(async function () {
    reference = tempDir('background');
    runPython(path.join(testPyDir, 'background_reference.py'), [reference, String(HEIGHT), String(WIDTH), String(TILE), String(PAD)]);
    modelDir = tempDir('background-models');
    copyDemoModels(modelDir);
    fs.copyFileSync(path.join(reference, 'RealESRGAN_x2plus.pth'), path.join(modelDir, 'RealESRGAN_x2plus.pth'));
    engine = await DifFace.load(modelDir);
  });
  after(function () {
    engine?.dispose();
  });

  it('upscales tile by tile as the published upsampler does, within one 8-bit level', async function () {
    const expected = readNpy(path.join(reference, 'tiled.npy'));
    using input = toTensor(readNpy(path.join(reference, 'input.npy')));
    const seen: { tile: number; total: number }[] = [];
    using out = await engine.upscaleBackground(input, { tile: TILE, tilePad: PAD, onTile: (p) => seen.push(p) });
    assert.deepEqual(out.shape, [1, 3, 2 * HEIGHT, 2 * WIDTH]);
    const { max, differing } = levels(await valuesOf(out), expected.data);
    assert.ok(max <= 1, `at most one level apart, got ${max}`);
    assert.ok(differing <= expected.data.length / 100, `${differing} values differ by a level`);
    // The even-padded 22 x 28 photo in tiles of 8: 3 rows of 4.
    assert.deepEqual(seen.map((p) => p.tile), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.ok(seen.every((p) => p.total === 12));
  });

  it('runs in one piece with tile 0, and the tiles change the result where the network sees less', async function () {
    const whole = readNpy(path.join(reference, 'whole.npy'));
    const tiled = readNpy(path.join(reference, 'tiled.npy'));
    using input = toTensor(readNpy(path.join(reference, 'input.npy')));
    using out = await engine.upscaleBackground(input, { tile: 0 });
    assert.ok(levels(await valuesOf(out), whole.data).max <= 1);
    // Otherwise the first test would not show that tiles are cut where the published ones are.
    assert.ok(levels(tiled.data, whole.data).differing > whole.data.length / 10);
  });

  it('stops between tiles when the signal fires, and refuses odd tiles', async function () {
    using input = toTensor(readNpy(path.join(reference, 'input.npy')));
    const controller = new AbortController();
    let tiles = 0;
    await assert.rejects(engine.upscaleBackground(input, {
      tile: TILE, tilePad: PAD, signal: controller.signal, onTile: () => { tiles++; controller.abort(); },
    }), (error: DifFaceError) => error.name === 'AbortError' && error.code === 'EABORT');
    // Progress reaches JavaScript while the next tile may already be running: the call stops
    // at the first check after the signal, well before the twelfth tile.
    assert.ok(tiles >= 1 && tiles < 12, `${tiles} tiles reported`);
    await assert.rejects(engine.upscaleBackground(input, { tile: 7 }), (error: DifFaceError) => error.code === 'EARG' && /tile/.test(error.message));
  });

  it('names the command that fetches the weights when they are not in the model directory', async function () {
    const bare = await DifFace.load(demoModelsDir());
    try {
      assert.equal(bare.backgroundAvailable, false);
      using input = Tensor.fromFloat32(new Float32Array(3 * 4 * 4), [1, 3, 4, 4]);
      await assert.rejects(bare.upscaleBackground(input), (error: DifFaceError) =>
        error.code === 'EMODELDIR' && error.message.includes('difface models fetch --only photos'));
    } finally {
      bare.dispose();
    }
  });

  it('refuses a checkpoint that is not Real-ESRGAN x2plus with ECHECKPOINT', async function () {
    const wrong = tempDir('background-wrong');
    copyDemoModels(wrong);
    // A SwinIR checkpoint where RealESRGAN_x2plus.pth should be.
    fs.copyFileSync(path.join(repoRoot, 'test', 'fixtures', 'reference', 'small', 'backbone.pth'), path.join(wrong, 'RealESRGAN_x2plus.pth'));
    const other = await DifFace.load(wrong);
    try {
      using input = Tensor.fromFloat32(new Float32Array(3 * 4 * 4), [1, 3, 4, 4]);
      await assert.rejects(other.upscaleBackground(input), (error: DifFaceError) =>
        error.code === 'ECHECKPOINT' && error.message.includes('missing: conv_first.weight'));
    } finally {
      other.dispose();
    }
  });

  describe('in whole photos', function () {
    const portrait = path.join(imagesDir, 'whole', '04.jpg');

    before(function () {
      skipWithoutFaceFinding(this);
    });

    it('is the default when its weights are there, Lanczos otherwise, and the result says which ran', async function () {
      const published = await engine.restorePhoto(portrait, { seed: 1, format: 'png' });
      assert.deepEqual([published.info.detector, published.info.paste, published.info.background], ['dlib', 'square', 'realesrgan']);
      const lanczos = await engine.restorePhoto(portrait, { seed: 1, format: 'png', background: 'lanczos' });
      assert.equal(lanczos.info.background, 'lanczos');
      // The same faces go into both; the backgrounds differ (random weights look nothing like Lanczos).
      assert.deepEqual(published.faces.map((f) => f.box), lanczos.faces.map((f) => f.box));
      const [a, b] = await Promise.all([published.image, lanczos.image].map((image) => sharp(image).raw().toBuffer()));
      assert.equal(a?.length, 450 * 450 * 3);
      assert.notDeepEqual(a, b);
      await assert.rejects(engine.restorePhoto(portrait, { background: 'esrgan' as 'lanczos' }),
        (error: DifFaceError) => error.code === 'EARG' && /background/.test(error.message));
    });

    it('falls back to Lanczos without the weights, and the CLI and its JSON say so', function () {
      const out = tempDir('background-cli');
      const result = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'restore', portrait, '-o', out,
        '--models', demoModelsDir(), '--json', '--seed', '1'], { encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stderr,
        /dlib faces, square mask, Lanczos background \(detection_Resnet50_Final\.pth, parsing_parsenet\.pth and RealESRGAN_x2plus\.pth not in .*difface models fetch --only photos/);
      const summary = JSON.parse(result.stdout) as { results: { path: { detector: string; paste: string; background: string } }[] };
      assert.deepEqual(summary.results[0]?.path, { detector: 'dlib', paste: 'square', background: 'lanczos' });
      const refused = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'restore', portrait, '-o', out,
        '--models', demoModelsDir(), '--background', 'esrgan'], { encoding: 'utf8' });
      assert.equal(refused.status, 2);
      assert.match(refused.stderr, /background/);
    });
  });
});

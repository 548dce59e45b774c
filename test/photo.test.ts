// Whole photos (with the demo models): the faces a person sees are found and no more, the
// output is the input times the upscale, pixels far from every face are the upscaled photo
// itself, and the pasted faces blend in without a seam. Skipped, with the reason, where
// this difface was built without dlib.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';

import { DifFace, DifFaceError, RestoredPhoto, Tensor, demoModelsDir } from 'difface';

import { imagesDir, repoRoot, tempDir } from './helpers/env';
import { skipWithoutFaceFinding } from './helpers/faces';

const wholeDir = path.join(imagesDir, 'whole');
// Counted by eye: four people in each group photo, one portrait.
const FACES: Record<string, number> = { '00.jpg': 4, '02.png': 4, '04.jpg': 1 };

interface Raster {
  data: Buffer;
  width: number;
  height: number;
}

async function raster(image: string | Buffer): Promise<Raster> {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function upscaledInput(file: string, upscale: number): Promise<Raster> {
  const source = await sharp(file).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const data = await sharp(source.data, { raw: source.info }).resize(source.info.width * upscale, source.info.height * upscale, { kernel: 'lanczos3' })
    .raw().toBuffer();
  return { data, width: source.info.width * upscale, height: source.info.height * upscale };
}

describe('whole photos', function () {
  let engine: DifFace;
  const results = new Map<string, RestoredPhoto>();
  // Two tests compare each restored photo with the upscaled input; decode both once.
  const decoded = new Map<string, Promise<{ out: Raster; background: Raster }>>();
  const rasters = (name: string) => {
    let pair = decoded.get(name);
    if (pair === undefined) {
      pair = (async () => ({
        out: await raster((results.get(name) as RestoredPhoto).image),
        background: await upscaledInput(path.join(wholeDir, name), 2),
      }))();
      decoded.set(name, pair);
    }
    return pair;
  };

  before(async function () {
    skipWithoutFaceFinding(this);
    engine = await DifFace.load(demoModelsDir());
    for (const name of Object.keys(FACES)) {
      results.set(name, await engine.restorePhoto(path.join(wholeDir, name), { seed: 1, format: 'png' }));
    }
  });
  after(function () {
    engine?.dispose();
    decoded.clear();  // some 20 MB of pixels the later test files do not need
  });

  it('finds the faces a person sees, and no more', function () {
    for (const [name, count] of Object.entries(FACES)) {
      const photo = results.get(name) as RestoredPhoto;
      assert.equal(photo.faces.length, count, name);
      for (const face of photo.faces) {
        const [left, top, right, bottom] = face.box;
        assert.ok(right > left && bottom > top);
        // The eyes lie inside the box, the left one left of the right one.
        const [[lx, ly], [rx, ry]] = face.points as [[number, number], [number, number]];
        assert.ok(lx < rx && lx > left && rx < right && ly > top && ry < bottom, `${name}: landmarks inside the box`);
      }
    }
  });

  it('makes the output the input times the upscale, and each restored face 512 x 512', async function () {
    for (const name of Object.keys(FACES)) {
      const photo = results.get(name) as RestoredPhoto;
      const input = await sharp(path.join(wholeDir, name)).metadata();
      const output = await sharp(photo.image).metadata();
      assert.deepEqual([output.width, output.height], [(input.width ?? 0) * 2, (input.height ?? 0) * 2], name);
      const face = await sharp(photo.faces[0]?.restored as Buffer).metadata();
      assert.deepEqual([face.width, face.height], [512, 512]);
    }
    const three = await engine.restorePhoto(path.join(wholeDir, '04.jpg'), { seed: 1, upscale: 3, format: 'png' });
    assert.deepEqual([(await sharp(three.image).metadata()).width], [225 * 3]);
  });

  it('leaves pixels far from every face exactly as the upscaled photo', async function () {
    for (const name of Object.keys(FACES)) {
      const photo = results.get(name) as RestoredPhoto;
      const { out, background } = await rasters(name);
      const { width, height } = out;
      // Far: outside every face's box grown to four times its size.
      const near = (x: number, y: number) => photo.faces.some(({ box: [l, t, r, b] }) => {
        const [cx, cy, half] = [(l + r), (t + b), 2 * (r - l)];
        return Math.abs(x - cx) < 2 * half && Math.abs(y - cy) < 2 * half;
      });
      let far = 0;
      let changed = 0;
      const difference = new Uint8Array(width * height);
      for (let p = 0; p < width * height; p++) {
        for (let c = 0; c < 3; c++) {
          difference[p] = Math.max(difference[p] as number, Math.abs((out.data[3 * p + c] as number) - (background.data[3 * p + c] as number)));
        }
        if (!near(p % width, Math.floor(p / width))) {
          far++;
          if (difference[p] !== 0) changed++;
        }
      }
      // (In the portrait the face's surroundings fill the frame.)
      if (photo.faces.length > 1) assert.ok(far > 0.2 * width * height, `${name}: enough pixels far from faces`);
      assert.equal(changed, 0, `${name}: pixels far from faces are the upscaled photo`);
    }
  });

  it('pastes with a feathered mask: no seam where a face meets the photo', async function () {
    // A white face into a black canvas, the most visible seam there can be: across the
    // mask's edge the result must climb gradually, while it stays flat beside the edge.
    const side = 512;
    const [width, height] = [600, 400];
    const canvas = Tensor.fromFloat32(new Float32Array(3 * width * height), [1, 3, height, width]);
    const face = Tensor.fromFloat32(new Float32Array(3 * side * side).fill(1), [1, 3, side, side]);
    const scale = 0.5;  // the face's square covers 256 x 256 canvas pixels from (150, 60)
    const pasted = await engine.pasteFaces(canvas, [face], [[1 / scale, 0, -150 / scale, 0, 1 / scale, -60 / scale]], 2);
    const values = await pasted.toFloat32();
    for (const t of [canvas, face, pasted]) t.dispose();
    const at = (x: number, y: number) => values[y * width + x] as number;
    let across = 0;
    for (let x = 100; x < 300; x++) across = Math.max(across, Math.abs(at(x + 1, 188) - at(x, 188)));
    assert.equal(at(50, 188), 0, 'outside the square: the canvas');
    assert.ok(Math.abs(at(278, 188) - 1) < 1e-6, 'inside: the face');
    assert.ok(across > 0 && across < 0.2, `the steepest step across the edge is ${across} of the full difference`);
    let beside = 0;
    for (let x = 0; x < 140; x++) beside = Math.max(beside, Math.abs(at(x + 1, 188) - at(x, 188)));
    assert.equal(beside, 0);
  });

  it('shows no seam in the real photos: across the mask edge the gradient is no steeper than beside it', async function () {
    // Each output pixel near a face is put in a 1-pixel band by its distance (in output pixels)
    // to the edge of the face's aligned square; per band, the output's mean luma gradient is
    // divided by the upscaled photo's there. A seam is a band steeper than both bands 2 pixels
    // beside it. Pasting the same faces with a hard mask makes bands at least 1.28 times
    // steeper in every photo; the feathered paste stays under 1.14.
    for (const name of Object.keys(FACES)) {
      const photo = results.get(name) as RestoredPhoto;
      const { out, background } = await rasters(name);
      const { width, height } = out;
      const luma = (r: Raster, p: number) => 0.299 * (r.data[3 * p] as number) + 0.587 * (r.data[3 * p + 1] as number) + 0.114 * (r.data[3 * p + 2] as number);
      const gradient = (r: Raster, p: number) => Math.abs(luma(r, p + 1) - luma(r, p)) + Math.abs(luma(r, p + width) - luma(r, p));
      // Distance inside the face's square, in output pixels (negative outside it).
      const inside = (toCrop: number[], x: number, y: number) => {
        const [a, b, c, d, e, f] = toCrop as [number, number, number, number, number, number];
        const [px, py] = [(x + 0.5) / 2 - 0.5, (y + 0.5) / 2 - 0.5];
        const [u, v] = [a * px + b * py + c, d * px + e * py + f];
        return Math.min(u, v, 511 - u, 511 - v) / (Math.hypot(a, d) / 2);
      };
      for (const [i, face] of photo.faces.entries()) {
        const bands = new Map<number, { output: number; photo: number }>();
        for (let y = 0; y < height - 1; y++) {
          for (let x = 0; x < width - 1; x++) {
            const depth = inside(face.toCrop, x, y);
            if (depth < -12 || depth >= 40) continue;
            if (photo.faces.some((other, j) => j !== i && inside(other.toCrop, x, y) > -12)) continue;
            const band = bands.get(Math.floor(depth)) ?? { output: 0, photo: 0 };
            band.output += gradient(out, y * width + x);
            band.photo += gradient(background, y * width + x);
            bands.set(Math.floor(depth), band);
          }
        }
        const ratio = (k: number) => { const band = bands.get(k); return band === undefined ? undefined : band.output / band.photo; };
        let steepest = 0;
        for (const k of bands.keys()) {
          const [before, after] = [ratio(k - 2), ratio(k + 2)];
          if (before !== undefined && after !== undefined) steepest = Math.max(steepest, (ratio(k) as number) / Math.max(before, after));
        }
        assert.ok(bands.size > 40, `${name} face ${i}: the bands around the edge are measured`);
        assert.ok(steepest < 1.2, `${name} face ${i}: a band is ${steepest.toFixed(3)} times steeper than the bands beside it`);
      }
    }
  });

  it('restores only the centre face, leaves small faces, and draws boxes when asked', async function () {
    const group = path.join(wholeDir, '02.png');
    const centre = await engine.restorePhoto(group, { seed: 1, onlyCenterFace: true });
    assert.equal(centre.faces.length, 1);
    const [l, , r] = centre.faces[0]?.box as [number, number, number, number];
    assert.ok(Math.abs((l + r) / 2 - 1204 / 2) < 200, 'the face nearest the centre');
    const big = await engine.restorePhoto(path.join(wholeDir, '00.jpg'), { seed: 1, minFace: 42 });
    assert.ok(big.faces.length < 4 && big.faces.every((face) => face.box[2] - face.box[0] >= 42));
    const boxed = await raster((await engine.restorePhoto(path.join(wholeDir, '04.jpg'), { seed: 1, drawBox: true, format: 'png' })).image);
    const [bl, bt] = (results.get('04.jpg') as RestoredPhoto).faces[0]?.box as [number, number, number, number];
    const at = ((Math.round(bt * 2) + 2) * boxed.width + Math.round(bl * 2) + 1) * 3;
    assert.deepEqual([boxed.data[at], boxed.data[at + 1], boxed.data[at + 2]], [0, 255, 0], 'a green box edge');
  });

  it('restores photos from the CLI without --aligned, with faces in OUT/faces and boxes in the JSON', function () {
    const out = tempDir('photos');
    const run = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'restore', wholeDir, '-o', out, '--json',
      '--seed', '1'], { encoding: 'utf8', env: { ...process.env, DIFFACE_MODELS: demoModelsDir() } });
    assert.equal(run.status, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as { results: { input: string; faces: { box: number[]; output: string }[] }[] };
    for (const result of summary.results) {
      assert.equal(result.faces.length, FACES[path.basename(result.input)]);
      for (const face of result.faces) assert.ok(fs.existsSync(face.output) && face.box.length === 4);
    }
    assert.ok(fs.existsSync(path.join(out, 'faces', '02_03.png')));
  });

  it('names each bad photo and says what is wrong with it, as the aligned path does', async function () {
    const dir = tempDir('bad-photos');
    const empty = path.join(dir, 'empty.jpg');
    fs.writeFileSync(empty, '');
    const gif = path.join(dir, 'moving.gif');
    fs.writeFileSync(gif, await sharp({ create: { width: 8, height: 8, channels: 3, background: '#888' } }).gif().toBuffer());
    const whole = fs.readFileSync(path.join(wholeDir, '00.jpg'));
    const truncated = path.join(dir, 'truncated.jpg');
    fs.writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 3)));
    const cases: [string | Buffer, RegExp, object?][] = [
      [Buffer.from('no pixels here'), /^<buffer>: is not an image/],
      [empty, /empty\.jpg: is empty$/],
      [path.join(dir, 'missing.png'), /missing\.png: cannot be read \(no such file\)/],
      [gif, /moving\.gif: is a gif image; difface reads PNG/],
      [truncated, /truncated\.jpg: cannot be decoded .*is the file complete\?/],
      [path.join(wholeDir, '00.jpg'), /00\.jpg: has \d+ x \d+ = \d+ pixels, more than the limit of 1000/, { maxPixels: 1000 }],
    ];
    for (const [input, message, options] of cases) {
      await assert.rejects(engine.restorePhoto(input, options), (error) =>
        error instanceof DifFaceError && error.code === 'EIMAGE' && message.test(error.message), String(message));
    }
  });

  it('turns a failure of the face finder itself into EDETECT', async function () {
    // Below restorePhoto, which always hands the finder a whole photo: the finder's own refusal
    // (here, pixels that do not fill the size given) must still come out as a DifFaceError.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { findFaces } = require(path.join(repoRoot, 'dist', 'faces.js')) as {
      findFaces(rgb: Buffer, width: number, height: number): Promise<unknown>;
    };
    await assert.rejects(findFaces(Buffer.alloc(10), 64, 64), (error) =>
      error instanceof DifFaceError && error.code === 'EDETECT' && /finding faces failed: .*width \* height \* 3 bytes/.test(error.message));
  });
});

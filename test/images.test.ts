// restoreImage / restoreImages: real files in, encoded restored images out, with the demo
// models (which pass the estimate through and denoise: they do not restore faces).
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import sharp from 'sharp';

import { DifFace, Tensor, decodeImage, demoModelsDir, encodeImage, readModelCard } from 'difface';

import { runPython, tempDir, testPyDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';
import { alignedFaces, imageVariants, meanDifference } from './helpers/images';
import { maxAbsDiff, readNpy, writeNpy } from './helpers/npy';

describe('images through the demo models', function () {
  let engine: DifFace;
  let files: Record<string, string>;

  before(async function () {
    engine = await DifFace.load(demoModelsDir());
    files = await imageVariants();
  });
  after(function () {
    engine?.dispose();
  });

  it('the demo model card says plainly what the demo models are', function () {
    const card = readModelCard(demoModelsDir());
    assert.equal(card.kind, 'demo');
    assert.match(card.description, /does not restore faces/);
    assert.match(card.description, /difface convert/);
  });

  it('restores each aligned face at its size, as a PNG that keeps the picture', async function () {
    for (const face of alignedFaces()) {
      const result = await engine.restoreImage(face, { seed: 1 });
      const meta = await sharp(result.image).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height, meta.channels], ['png', 512, 512, 3]);
      assert.equal(result.info.input, face);
      // The demo denoises the face it was given; a transposed or swapped image would be far off.
      const difference = await meanDifference(result.image, face);
      assert.ok(difference < 0.08, `${path.basename(face)}: mean difference ${difference}`);
    }
  });

  it('reads JPEG, WebP, TIFF and AVIF, writing JPEG and WebP as such and the others as PNG', async function () {
    const expected: Record<string, string> = { jpeg: 'jpeg', webp: 'webp', tiff: 'png', avif: 'png' };
    for (const [name, format] of Object.entries(expected)) {
      const result = await engine.restoreImage(files[name] as string, { seed: 1 });
      const meta = await sharp(result.image).metadata();
      assert.equal(meta.format, format, name);
      assert.equal(result.info.inputFormat, name === 'avif' ? 'avif' : name);
      assert.deepEqual([meta.width, meta.height], [512, 512]);
    }
    const asked = await engine.restoreImage(files.png as string, { seed: 1, format: 'webp' });
    assert.equal((await sharp(asked.image).metadata()).format, 'webp');
  });

  it('keeps 16-bit PNG 16-bit, grey grey and alpha alpha', async function () {
    const deep = await engine.restoreImage(files.png16 as string, { seed: 2 });
    assert.equal((await sharp(deep.image).metadata()).depth, 'ushort');
    const grey = await engine.restoreImage(files.grey as string, { seed: 2 });
    assert.equal((await sharp(grey.image).metadata()).channels, 1);
    assert.equal(grey.info.grey, true);
    const rgba = await engine.restoreImage(files.rgba as string, { seed: 2 });
    assert.equal((await sharp(rgba.image).metadata()).channels, 4);
    const alphaIn = await sharp(files.rgba as string).extractChannel(3).raw().toBuffer();
    const alphaOut = await sharp(rgba.image).extractChannel(3).raw().toBuffer();
    assert.ok(alphaOut.equals(alphaIn), 'alpha comes through unchanged');
  });

  it('restores faces of other sizes at their size, and honours EXIF orientation', async function () {
    for (const [name, width, height] of [['small', 300, 300], ['wide', 360, 240], ['rotated', 200, 300]] as const) {
      const result = await engine.restoreImage(files[name] as string, { seed: 3 });
      const meta = await sharp(result.image).metadata();
      assert.deepEqual([meta.width, meta.height], [width, height], name);
    }
    const decoded = await decodeImage(files.rotated as string);
    assert.deepEqual([decoded.width, decoded.height], [200, 300]);
  });

  it('resizes as the published code does: bicubic with antialiasing, within 1e-5 of torch', async function () {
    const dir = tempDir('resize');
    const image = await decodeImage(files.wide as string);
    const input = Tensor.fromFloat32(image.rgb, [1, 3, image.height, image.width]);
    const source = path.join(dir, 'in.npy');
    writeNpy(source, image.rgb, [1, 3, image.height, image.width]);
    runPython(path.join(testPyDir, 'torch_resize.py'), [source, path.join(dir, 'out.npy'), '128', '128']);
    const resized = await engine.resize(input, [128, 128]);
    assert.ok(maxAbsDiff(await resized.toFloat32(), readNpy(path.join(dir, 'out.npy')).data) <= 1e-5);
    input.dispose();
    resized.dispose();
  });

  it('restores several faces in batches, and makes comparison pictures', async function () {
    const faces = alignedFaces().slice(0, 3);
    const seen: number[] = [];
    const results = await engine.restoreImages(faces, { seed: 4, batchSize: 2, compare: true, onImage: (done) => seen.push(done) });
    assert.deepEqual(seen, [2, 3]);
    assert.equal(results.length, 3);
    for (const result of results) {
      const compare = await sharp(result.compare as Buffer).metadata();
      assert.deepEqual([compare.width, compare.height], [3 * 512, 512]);
    }
  });

  it('names the input of every bad image', async function () {
    await rejectsWith(engine.restoreImage(files.text as string), 'EIMAGE', /notes\.png: is not an image/);
    await rejectsWith(engine.restoreImage(files.empty as string), 'EIMAGE', /empty\.png: is empty/);
    await rejectsWith(engine.restoreImage(files.truncated as string), 'EIMAGE', /truncated\.png: cannot be decoded/);
    await rejectsWith(engine.restoreImage('/nonexistent/face.png'), 'EIMAGE', /face\.png: cannot be read \(no such file\)/);
    await rejectsWith(engine.restoreImage(files.png as string, { maxPixels: 1000 }), 'EIMAGE', /512 x 512 = 262144 pixels, more than the limit of 1000/);
    await rejectsWith(engine.restoreImage(Buffer.from('nope')), 'EIMAGE', /<buffer>: is not an image/);
  });

  it('refuses an output format or quality it cannot write before restoring anything', async function () {
    const before = engine.stats().batches;
    await rejectsWith(engine.restoreImage(files.png as string, { format: 'gif' as never }), 'EARG', /format must be one of png, jpeg, webp, got "gif"/);
    await rejectsWith(engine.restoreImages([files.png as string], { quality: 0 }), 'EARG', /quality must be an integer from 1 to 100, got 0/);
    await rejectsWith(engine.restorePhoto(files.png as string, { format: 'bmp' as never }), 'EARG', /format must be .*got "bmp"/);
    await rejectsWith(engine.restorePhoto(files.png as string, { quality: 101 }), 'EARG', /quality must be .*got 101/);
    assert.equal(engine.stats().batches, before, 'no batch ran');
    const decoded = await decodeImage(files.png as string);
    await rejectsWith(encodeImage(decoded, { format: 'jpeg', quality: 2.5 }), 'EARG', /quality must be .*got 2\.5/);
  });
});

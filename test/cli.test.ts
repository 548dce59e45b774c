// `difface restore` as a user runs it: folders mixed with broken files, output naming and
// formats, comparison pictures, JSON, usage errors, models directories, and what must
// never happen (overwritten inputs, half-written files, a crash).
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';

import { demoModelsDir } from 'difface';

import { repoRoot, tempDir } from './helpers/env';
import { alignedFaces, imageVariants } from './helpers/images';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const cli = path.join(repoRoot, 'dist', 'cli.js');

function difface(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, DIFFACE_MODELS: '', XDG_CACHE_HOME: tempDir('cache'), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function size(file: string): Promise<[number, number]> {
  const meta = await sharp(file).metadata();
  return [meta.width ?? 0, meta.height ?? 0];
}

describe('difface restore', function () {
  let files: Record<string, string>;
  let mixed: string;

  before(async function () {
    files = await imageVariants();
    mixed = tempDir('mixed');
    for (const name of ['small', 'wide', 'jpeg', 'text', 'empty', 'truncated']) {
      fs.copyFileSync(files[name] as string, path.join(mixed, path.basename(files[name] as string)));
    }
  });

  it('restores every good face of a mixed folder at its size, names every broken file, exits 1', async function () {
    const out = path.join(tempDir('out'), 'restored');
    const before = Object.fromEntries(fs.readdirSync(mixed).map((f) => [f, fs.readFileSync(path.join(mixed, f))]));
    const run = await difface(['restore', mixed, '-o', out, '--aligned', '--seed', '1']);
    assert.equal(run.code, 1, run.stderr);
    assert.deepEqual(await size(path.join(out, 'small.png')), [300, 300]);
    assert.deepEqual(await size(path.join(out, 'wide.png')), [360, 240]);
    assert.deepEqual(await size(path.join(out, 'face.jpg')), [512, 512]);
    for (const broken of ['notes.png', 'empty.png', 'truncated.png']) {
      const lines = run.stderr.split('\n').filter((line) => line.includes(broken) && line.includes('[EIMAGE]'));
      assert.equal(lines.length, 1, `${broken} is named once in:\n${run.stderr}`);
    }
    assert.deepEqual(fs.readdirSync(out).sort(), ['face.jpg', 'small.png', 'wide.png'], 'nothing half-written is left');
    for (const [name, bytes] of Object.entries(before)) assert.ok(fs.readFileSync(path.join(mixed, name)).equals(bytes));
    assert.match(run.stderr, /demo models: they demonstrate the pipeline and do not restore faces/);
    assert.match(run.stderr, /restored .*small\.png -> .*small\.png/);
  });

  it('exits 0 when every input is restored, with comparison pictures and the format asked for', async function () {
    const out = tempDir('out');
    const faces = alignedFaces().slice(0, 2);
    const run = await difface(['restore', ...faces, '-o', out, '--aligned', '--compare', '--format', 'webp', '--batch', '2']);
    assert.equal(run.code, 0, run.stderr);
    for (const face of faces) {
      const stem = path.basename(face, '.png');
      assert.equal((await sharp(path.join(out, `${stem}.webp`)).metadata()).format, 'webp');
      assert.deepEqual(await size(path.join(out, `${stem}.compare.png`)), [1536, 512]);
    }
  });

  it('prints one JSON summary with --json', async function () {
    const out = tempDir('out');
    const run = await difface(['restore', files.small as string, files.text as string, '-o', out, '--aligned', '--json',
      '--seed', '7', '--eta', '0', '--start-step', '10']);
    assert.equal(run.code, 1);
    const summary = JSON.parse(run.stdout) as { demo: boolean; seed: string; results: { input: string; output?: string; seconds?: number; error?: { code: string } }[] };
    assert.equal(summary.demo, true);
    assert.equal(summary.seed, '7');
    const good = summary.results.find((r) => r.input === files.small);
    const bad = summary.results.find((r) => r.input === files.text);
    assert.equal(good?.output, path.join(out, 'small.png'));
    assert.ok((good?.seconds ?? 0) > 0);
    assert.equal(bad?.error?.code, 'EIMAGE');
  });

  it('never overwrites an input', async function () {
    const dir = tempDir('inplace');
    const face = path.join(dir, 'face.png');
    fs.copyFileSync(files.small as string, face);
    const original = fs.readFileSync(face);
    const run = await difface(['restore', face, '-o', dir, '--aligned']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /would overwrite the input/);
    assert.ok(fs.readFileSync(face).equals(original));
  });

  it('gives two inputs of the same name two outputs', async function () {
    const [a, b] = [tempDir('a'), tempDir('b')];
    fs.copyFileSync(files.small as string, path.join(a, 'face.png'));
    fs.copyFileSync(files.wide as string, path.join(b, 'face.png'));
    const out = tempDir('out');
    const run = await difface(['restore', path.join(a, 'face.png'), path.join(b, 'face.png'), '-o', out, '--aligned']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await size(path.join(out, 'face.png')), [300, 300]);
    assert.deepEqual(await size(path.join(out, 'face-2.png')), [360, 240]);
  });

  for (const [title, args, pattern] of [
    ['with a photo option and --aligned', ['restore', 'x.png', '-o', 'o', '--aligned', '--upscale', '2'], /--upscale is for whole photos; leave out --aligned/],
    ['with --compare on whole photos', ['restore', 'x.png', '-o', 'o', '--compare'], /--compare is for aligned faces/],
    ['with an upscale above 8', ['restore', 'x.png', '-o', 'o', '--upscale', '9'], /--upscale must be an integer from 1 to 8/],
    ['without an output folder', ['restore', 'x.png', '--aligned'], /-o OUT/],
    ['with eta outside [0, 1]', ['restore', 'x.png', '-o', 'o', '--aligned', '--eta', '1.5'], /--eta must be a number from 0 to 1/],
    ['with a batch below 1', ['restore', 'x.png', '-o', 'o', '--aligned', '--batch', '0'], /--batch must be an integer of at least 1/],
    ['with an unknown format', ['restore', 'x.png', '-o', 'o', '--aligned', '--format', 'bmp'], /--format must be one of png, jpeg, webp, got "bmp"/],
    ['with an unknown option', ['restore', 'x.png', '-o', 'o', '--aligned', '--fast'], /Unknown option '--fast'/],
  ] as const) {
    it(`is a usage error ${title} (exit 2)`, async function () {
      const run = await difface([...args]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, pattern);
    });
  }

  it('is a usage error with a start step outside the schedule (exit 2)', async function () {
    const run = await difface(['restore', files.small as string, '-o', tempDir('out'), '--aligned', '--start-step', '250']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /--start-step must be an integer from 1 to 249, got 250/);
  });

  it('says clearly when a device, a models directory or an output folder cannot be used (exit 1)', async function () {
    const face = files.small as string;
    const noCuda = await difface(['restore', face, '-o', tempDir('out'), '--aligned', '--device', 'cuda']);
    if (!noCuda.stderr.includes('[EDEVICE]')) assert.equal(noCuda.code, 0, 'only a machine with CUDA gets past this');
    else assert.equal(noCuda.code, 1);
    const badModels = await difface(['restore', face, '-o', tempDir('out'), '--aligned', '--models', tempDir('nomodels')]);
    assert.equal(badModels.code, 1);
    assert.match(badModels.stderr, /difface\.json is missing.*\[EMODELDIR\]/);
    const file = path.join(tempDir('file'), 'plain-file');
    fs.writeFileSync(file, '');
    const badOut = await difface(['restore', face, '-o', path.join(file, 'out'), '--aligned']);
    assert.equal(badOut.code, 1);
    assert.match(badOut.stderr, /output folder cannot be written.*\[EOUTPUT\]/);
    const emptyFolder = await difface(['restore', tempDir('nothing'), '-o', tempDir('out'), '--aligned']);
    assert.equal(emptyFolder.code, 1);
    assert.match(emptyFolder.stderr, /the folder holds no images/);
  });

  it('finds models through --models, then DIFFACE_MODELS, then the user cache, then the demo', async function () {
    const face = files.small as string;
    const cacheHome = tempDir('xdg');
    fs.cpSync(demoModelsDir(), path.join(cacheHome, 'difface', 'models'), { recursive: true });
    const fromCache = await difface(['restore', face, '-o', tempDir('out'), '--aligned', '--json'], { XDG_CACHE_HOME: cacheHome });
    assert.equal(fromCache.code, 0, fromCache.stderr);
    assert.equal((JSON.parse(fromCache.stdout) as { models: string }).models, path.join(cacheHome, 'difface', 'models'));
    const fromEnvironment = await difface(['restore', face, '-o', tempDir('out'), '--aligned', '--json'],
      { XDG_CACHE_HOME: cacheHome, DIFFACE_MODELS: demoModelsDir() });
    assert.equal((JSON.parse(fromEnvironment.stdout) as { models: string }).models, demoModelsDir());
    const explicit = await difface(['restore', face, '-o', tempDir('out'), '--aligned', '--models', tempDir('empty')],
      { DIFFACE_MODELS: demoModelsDir() });
    assert.match(explicit.stderr, /difface\.json is missing/);
  });
});

// The published package as a user gets it: `npm pack`, then `npm install` of the tarball
// into a new, empty app with no cmake, no C++ compiler and no Python on PATH. There the CPU
// prebuilt loads against torch 2.13 installed into a fresh virtual environment (on PATH, as
// an activated one is, or named by DIFFACE_LIBTORCH), from require() and import(); the CLI
// restores a face with the demo models; a strict TypeScript file using the whole API
// type-checks against the package's types; published-form checkpoints convert and restore
// natively. And what a user sees when the libtorch found is
// another version, or lacks a library. (test/cuda-prebuilt.test.ts does the CUDA variant.)
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { imagesDir, repoRoot, smallReferenceDir, tempDir } from './helpers/env';
import { alignedFaces } from './helpers/images';
import { bareEnvironment, freshVenv, packAndInstall, run, torchFolder } from './helpers/package';
import { smallArchitecture } from './helpers/native';

/**
 * A torch folder that looks like `torch` but says it is `version`, and lacks the libraries
 * named in `hidden`: libtorch as a user might have it, of another version or half-installed.
 */
function alteredTorch(torch: string, version: string, hidden: string[] = []): string {
  const fake = path.join(tempDir('torch'), 'torch');
  fs.mkdirSync(path.join(fake, 'lib'), { recursive: true });
  for (const name of fs.readdirSync(torch).filter((entry) => entry !== 'lib' && entry !== 'version.py')) {
    fs.symlinkSync(path.join(torch, name), path.join(fake, name));
  }
  for (const name of fs.readdirSync(path.join(torch, 'lib')).filter((entry) => !hidden.includes(entry))) {
    fs.symlinkSync(path.join(torch, 'lib', name), path.join(fake, 'lib', name));
  }
  const versionFile = fs.readFileSync(path.join(torch, 'version.py'), 'utf8');
  fs.writeFileSync(path.join(fake, 'version.py'), versionFile.replace(/^__version__ = .*$/m, `__version__ = '${version}'`));
  return fake;
}

/** Hiding an installed library needs root and unshare; skips the test, saying so, without them. */
function skipUnlessCanHide(test: Mocha.Context, library: string): void {
  if (process.getuid?.() !== 0 || spawnSync('unshare', ['--version']).status !== 0) {
    // eslint-disable-next-line no-console
    console.log(`      skipped: hiding ${library} needs root and unshare`);
    test.skip();
  }
}

describe('the npm package', function () {
  let tarball: string;
  let app: string;
  let env: NodeJS.ProcessEnv;
  let venv: string;
  /** The bare environment with the fresh virtual environment activated (first on PATH). */
  let activated: NodeJS.ProcessEnv;
  const cli = (): string => path.join(app, 'node_modules', '.bin', 'difface');

  before(function () {
    env = bareEnvironment();
    ({ tarball, app } = packAndInstall('cpu', env));
    const variant = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', 'difface', 'prebuilds', 'linux-x64',
      'torch2.13-cpu', 'variant.json'), 'utf8')) as { torch: string };
    venv = freshVenv([`torch==${variant.torch}`]);
    activated = { ...env, PATH: `${path.join(venv, 'bin')}:${env.PATH ?? ''}`, VIRTUAL_ENV: venv };
  });

  it('holds the compiled library, types, the CPU prebuilt and its description, models tools and demo models, and nothing of tests or builds', function () {
    const listing = run('tar', ['tzf', tarball], { cwd: repoRoot }).out.split('\n');
    for (const needed of ['package/dist/index.js', 'package/dist/index.mjs', 'package/dist/index.d.ts', 'package/dist/cli.js',
      'package/models/convert.py', 'package/models/unet.py', 'package/models/swinir.py', 'package/models/demo/unet.pt',
      'package/models/demo/difface.json', 'package/CMakeLists.txt', 'package/cpp/engine.cpp', 'package/scripts/install.js',
      'package/models/manifest.json', 'package/models/export_architecture.py', 'package/models/architectures/restoration/unet.pt',
      'package/models/architectures/restoration/backbone.pt', 'package/models/architectures/restoration/architecture.json',
      'package/models/architectures/photos/background.pt', 'package/models/architectures/photos/detector.pt',
      'package/models/architectures/photos/parser.pt', 'package/models/parsenet.py',
      'package/models/architectures/photos/architecture.json',
      'package/prebuilds/linux-x64/torch2.13-cpu/difface.node', 'package/prebuilds/linux-x64/torch2.13-cpu/variant.json',
      'package/prebuilds/linux-x64/faces/difface_faces.node']) {
      assert.ok(listing.includes(needed), `${needed} is packed`);
    }
    const testOnlyPython = /^package\/models\/(eager_sampler|random_checkpoint|demo)\.py$/;
    const unwanted = listing.filter((f) => /^package\/(test|build|bench|fuzz|\.ci|\.venv)/.test(f) || testOnlyPython.test(f) ||
      f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('package/lib/'));
    assert.deepEqual(unwanted, []);
  });

  it('loads the CPU prebuilt against the torch of an activated virtual environment, through require() and import()', function () {
    const required = run('node', ['-e', "const d = require('difface'); console.log(JSON.stringify(d.DifFace.versions()))"], { cwd: app, env: activated });
    assert.equal(required.code, 0, required.out);
    const info = JSON.parse(required.out) as { binary: string; variant: string; torch: string; libtorch: { path: string; version: string; from: string } };
    assert.equal(info.binary, 'prebuilt');
    assert.equal(info.variant, 'torch2.13-cpu');
    assert.match(info.torch, /^2\.13\./);
    assert.equal(info.libtorch.path, path.join(torchFolder(venv), 'lib'));
    assert.equal(info.libtorch.from, 'python3 on PATH');
    const imported = run('node', ['--input-type=module', '-e', "import { DifFace, Tensor } from 'difface'; console.log(typeof DifFace.load, typeof Tensor.fromFloat32, DifFace.versions().variant)"], { cwd: app, env: activated });
    assert.equal(imported.code, 0, imported.out);
    assert.equal(imported.out.trim(), 'function function torch2.13-cpu');
  });

  it('loads it against the torch DIFFACE_LIBTORCH names, with no python on PATH', function () {
    const loaded = run('node', ['-e', "console.log(JSON.stringify(require('difface').versions().libtorch))"],
      { cwd: app, env: { ...env, DIFFACE_LIBTORCH: torchFolder(venv) } });
    assert.equal(loaded.code, 0, loaded.out);
    assert.deepEqual(JSON.parse(loaded.out), { path: path.join(torchFolder(venv), 'lib'), version: '2.13.0+cpu', from: 'DIFFACE_LIBTORCH' });
  });

  it('restores a face from its CLI with the demo models, and says what it runs on', function () {
    const face = alignedFaces()[0] as string;
    const out = path.join(app, 'out');
    const restored = run(cli(), ['restore', face, '-o', out, '--aligned'], { cwd: app, env: activated });
    assert.equal(restored.code, 0, restored.out);
    assert.ok(fs.existsSync(path.join(out, path.basename(face))));
    const version = run(cli(), ['--version'], { cwd: app, env: activated });
    assert.match(version.out, /libtorch 2\.13\.\d+, CUDA no, prebuilt addon/);
    const doctor = run(cli(), ['doctor'], { cwd: app, env: activated });
    assert.equal(doctor.code, 0, doctor.out);
    assert.match(doctor.out, /^addon: +prebuilt \(torch2\.13-cpu\), \S+difface\.node$/m);
    assert.match(doctor.out, new RegExp(`^libtorch: +2\\.13\\.0 \\(2\\.13\\.0\\+cpu\\) at ${torchFolder(venv)}/lib, found by python3 on PATH$`, 'm'));
    assert.match(doctor.out, /^CUDA: +no: this addon was built against a libtorch without CUDA/m);
    assert.match(doctor.out, /^models: +\S+demo \[demo \(used\)\] demo$/m);
  });

  it('converts published-form checkpoints natively and restores with them, with no Python', function () {
    const difface = cli();
    // No Python on PATH: libtorch is named, as a user of a C++ distribution would.
    const withTorch = { ...env, DIFFACE_LIBTORCH: torchFolder(venv) };
    const models = path.join(app, 'published');
    const converted = run(difface, ['convert', '--unet', path.join(smallReferenceDir, 'unet.pth'), '--backbone',
      path.join(smallReferenceDir, 'backbone.pth'), '--architecture', smallArchitecture(), '--out', models], { cwd: app, env: withTorch });
    assert.equal(converted.code, 0, converted.out);
    assert.match(converted.out, /UNet 3,519,398 and backbone 173,803 parameters.*read natively at load/);
    const out = path.join(app, 'out-published');
    const restored = run(difface, ['restore', alignedFaces()[0] as string, '-o', out, '--aligned', '--models', models,
      '--start-step', '5'], { cwd: app, env: withTorch });
    assert.equal(restored.code, 0, restored.out);
    assert.ok(fs.existsSync(path.join(out, path.basename(alignedFaces()[0] as string))));
  });

  it('type-checks a strict TypeScript file that uses the whole API, and refuses misuses', function () {
    fs.copyFileSync(path.join(repoRoot, 'test', 'types', 'usage.ts'), path.join(app, 'usage.ts'));
    fs.copyFileSync(path.join(repoRoot, 'test', 'types', 'misuse.ts'), path.join(app, 'misuse.ts'));
    const config = JSON.parse(fs.readFileSync(path.join(repoRoot, 'test', 'types', 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    config.compilerOptions.typeRoots = [path.join(repoRoot, 'node_modules', '@types')];
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(config));
    const tsc = run('node', [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app, env });
    assert.equal(tsc.code, 0, tsc.out);
  });

  it('refuses a libtorch of another version with ENATIVE: what is shipped, what was found, and the commands that fix it', function () {
    const other = alteredTorch(torchFolder(venv), '2.12.1+cpu');
    const script = "try { require('difface').versions() } catch (e) { console.log(e.code); console.log(e.message) }";
    const refused = run('node', ['-e', script], { cwd: app, env: { ...env, DIFFACE_LIBTORCH: other } });
    assert.equal(refused.code, 0, refused.out);
    const [code, message] = refused.out.split('\n');
    assert.equal(code, 'ENATIVE');
    assert.match(message ?? '', /prebuilt binaries run on torch 2\.13 \(CPU\)/);
    assert.ok(message?.includes(`torch 2.12.1+cpu (CPU) at ${path.join(other, 'lib')} (DIFFACE_LIBTORCH)`), message);
    assert.ok(message?.includes('`python3 -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`'), message);
    assert.ok(message?.includes(`\`Torch_DIR=${path.join(other, 'share', 'cmake', 'Torch')} npm rebuild difface --build-from-source\``), message);
    const doctor = run(cli(), ['doctor'], { cwd: app, env: { ...env, DIFFACE_LIBTORCH: other } });
    assert.equal(doctor.code, 1, doctor.out);
    assert.match(doctor.out, /^addon: +cannot load \[ENATIVE\]: difface's prebuilt binaries run on torch 2\.13/m);
    assert.match(doctor.out, /^prebuilt: +torch2\.13-cpu$/m);
    assert.doesNotMatch(doctor.out, /at Module\._extensions|dlopen|\n +at /);
  });

  it('says which library is missing from a half-installed torch, and refuses a folder with none', function () {
    const broken = alteredTorch(torchFolder(venv), '2.13.0+cpu', ['libtorch_cpu.so']);
    const hidden = run(cli(), ['--version'], { cwd: app, env: { ...env, DIFFACE_LIBTORCH: broken } });
    assert.equal(hidden.code, 1, hidden.out);
    assert.ok(hidden.out.includes(`torch 2.13.0+cpu (CPU) at ${path.join(broken, 'lib')} (DIFFACE_LIBTORCH), which is incomplete: ` +
      `libtorch_cpu.so missing from ${path.join(broken, 'lib')}`), hidden.out);
    assert.match(hidden.out, /\[ENATIVE\]$/m);
    const empty = tempDir('empty');
    const none = run(cli(), ['--version'], { cwd: app, env: { ...env, DIFFACE_LIBTORCH: empty } });
    assert.equal(none.code, 1, none.out);
    assert.ok(none.out.includes(`${empty} holds no libtorch`), none.out);
  });

  it('restores aligned faces without dlib, and says what to install for whole photos', function () {
    skipUnlessCanHide(this, 'dlib');
    const script = [
      "const { DifFace, resolveModels, faceFindingAvailable } = require('difface');",
      '(async () => {',
      '  const engine = await DifFace.load(resolveModels().dir);',
      `  const aligned = await engine.restoreImage(${JSON.stringify(alignedFaces()[0])}, { seed: 1 });`,
      '  console.log("aligned", aligned.image.length > 0, JSON.stringify(faceFindingAvailable()));',
      `  await engine.restorePhoto(${JSON.stringify(path.join(imagesDir, 'whole', '04.jpg'))})`,
      '    .catch((error) => console.log("photo", error.code, error.message));',
      '  engine.dispose();',
      '})();',
    ].join('\n');
    const hidden = run(path.join(repoRoot, 'test', 'sh', 'without-libs.sh'), ['libdlib*', process.execPath, '-e', script],
      { cwd: app, env: { ...activated, PATH: `${path.join(venv, 'bin')}:${process.env.PATH ?? ''}` } });
    assert.equal(hidden.code, 0, hidden.out);
    assert.match(hidden.out, /^aligned true \{"available":false,"reason":"[^"]*libdlib\S* is not installed/m);
    assert.match(hidden.out, /^photo EDETECT .*libdlib\S* is not installed\): apt-get install libdlib19\.1 /m);
  });
});

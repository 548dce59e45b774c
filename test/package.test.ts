// The published package as a user gets it: `npm pack`, then `npm install` of the tarball
// into a new, empty app with no cmake, no C++ compiler and no Python on PATH. There the
// prebuilt binary loads from require() and import(), the CLI restores a face with the demo
// models, and a strict TypeScript file using the whole API type-checks against the
// package's types, and published-form checkpoints convert and restore natively. Also: what
// a user sees when libtorch is not installed.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { imagesDir, repoRoot, smallReferenceDir, tempDir } from './helpers/env';
import { alignedFaces } from './helpers/images';
import { smallArchitecture } from './helpers/native';

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): { code: number | null; out: string } {
  const result = spawnSync(command, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: result.status, out: `${result.stdout}${result.stderr}` };
}

/** A PATH with node, npm and sh alone: no cmake, no compiler, no python. */
function bareEnvironment(): NodeJS.ProcessEnv {
  const bin = tempDir('bin');
  const npmCli = [process.env.npm_execpath, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')]
    .find((file) => file !== undefined && file.endsWith('.js') && fs.existsSync(file));
  if (npmCli === undefined) throw new Error('cannot find npm-cli.js next to node');
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\nexec "${process.execPath}" "${npmCli}" "$@"\n`, { mode: 0o755 });
  const env: NodeJS.ProcessEnv = { HOME: process.env.HOME, PATH: bin, XDG_CACHE_HOME: tempDir('xdg'), npm_config_update_notifier: 'false' };
  return env;
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

  before(function () {
    const packed = tempDir('pack');
    const pack = run('npm', ['pack', '--pack-destination', packed, '--silent'], { cwd: repoRoot });
    assert.equal(pack.code, 0, pack.out);
    const name = fs.readdirSync(packed).find((f) => f.endsWith('.tgz'));
    assert.ok(name, pack.out);
    tarball = path.join(packed, name);
    env = bareEnvironment();
    for (const tool of ['cmake', 'c++', 'g++', 'python3', 'python']) {
      assert.notEqual(spawnSync(tool, ['--version'], { env }).status, 0, `${tool} must be hidden`);
    }
    app = tempDir('app');
    assert.equal(run('npm', ['init', '-y'], { cwd: app, env }).code, 0);
    const install = run('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, env });
    assert.equal(install.code, 0, install.out);
  });

  it('holds the compiled library, types, prebuilt binary, models tools and demo models, and nothing of tests or builds', function () {
    const listing = run('tar', ['tzf', tarball], { cwd: repoRoot }).out.split('\n');
    for (const needed of ['package/dist/index.js', 'package/dist/index.mjs', 'package/dist/index.d.ts', 'package/dist/cli.js',
      'package/models/convert.py', 'package/models/unet.py', 'package/models/swinir.py', 'package/models/demo/unet.pt',
      'package/models/demo/difface.json', 'package/CMakeLists.txt', 'package/cpp/engine.cpp', 'package/scripts/install.js',
      'package/models/manifest.json', 'package/models/export_architecture.py', 'package/models/architectures/restoration/unet.pt',
      'package/models/architectures/restoration/backbone.pt', 'package/models/architectures/restoration/architecture.json',
      'package/models/architectures/photos/background.pt', 'package/models/architectures/photos/detector.pt',
      'package/models/architectures/photos/architecture.json']) {
      assert.ok(listing.includes(needed), `${needed} is packed`);
    }
    assert.ok(listing.some((f) => /^package\/prebuilds\/linux-x64\/[^/]*\.node$/.test(f)), 'a prebuilt binary is packed');
    assert.ok(listing.includes('package/prebuilds/linux-x64/faces/difface_faces.node'), 'the prebuilt whole-photo module is packed');
    const testOnlyPython = /^package\/models\/(eager_sampler|random_checkpoint|demo)\.py$/;
    const unwanted = listing.filter((f) => /^package\/(test|build|bench|fuzz|\.ci)\//.test(f) || testOnlyPython.test(f) ||
      f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('package/lib/'));
    assert.deepEqual(unwanted, []);
  });

  it('loads the prebuilt binary through require() and import()', function () {
    const required = run('node', ['-e', "const d = require('difface'); console.log(JSON.stringify(d.DifFace.versions()))"], { cwd: app, env });
    assert.equal(required.code, 0, required.out);
    const info = JSON.parse(required.out) as { binary: string; torch: string };
    assert.equal(info.binary, 'prebuilt');
    const imported = run('node', ['--input-type=module', '-e', "import { DifFace, Tensor } from 'difface'; console.log(typeof DifFace.load, typeof Tensor.fromFloat32)"], { cwd: app, env });
    assert.equal(imported.code, 0, imported.out);
    assert.equal(imported.out.trim(), 'function function');
  });

  it('restores a face from its CLI with the demo models', function () {
    const face = alignedFaces()[0] as string;
    const out = path.join(app, 'out');
    const restored = run(path.join(app, 'node_modules', '.bin', 'difface'), ['restore', face, '-o', out, '--aligned'], { cwd: app, env });
    assert.equal(restored.code, 0, restored.out);
    assert.ok(fs.existsSync(path.join(out, path.basename(face))));
    const version = run(path.join(app, 'node_modules', '.bin', 'difface'), ['--version'], { cwd: app, env });
    assert.match(version.out, /prebuilt addon/);
  });

  it('converts published-form checkpoints natively and restores with them, with no Python', function () {
    const difface = path.join(app, 'node_modules', '.bin', 'difface');
    const models = path.join(app, 'published');
    const converted = run(difface, ['convert', '--unet', path.join(smallReferenceDir, 'unet.pth'), '--backbone',
      path.join(smallReferenceDir, 'backbone.pth'), '--architecture', smallArchitecture(), '--out', models], { cwd: app, env });
    assert.equal(converted.code, 0, converted.out);
    assert.match(converted.out, /UNet 3,519,398 and backbone 173,803 parameters.*read natively at load/);
    const out = path.join(app, 'out-published');
    const restored = run(difface, ['restore', alignedFaces()[0] as string, '-o', out, '--aligned', '--models', models,
      '--start-step', '5'], { cwd: app, env });
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

  it('says which library is missing, and how to get it, when libtorch is not installed', function () {
    skipUnlessCanHide(this, 'libtorch');
    const hidden = run(path.join(repoRoot, 'test', 'sh', 'without-libs.sh'),
      ['libtorch*|libc10*', process.execPath, path.join(app, 'node_modules', 'difface', 'dist', 'cli.js'), '--version'], { cwd: app, env: { ...env, PATH: process.env.PATH } });
    assert.equal(hidden.code, 1, hidden.out);
    assert.match(hidden.out, /needs libtorch 1\.\d+, and libtorch\S* is not installed: apt-get install libtorch1\.\d+/);
    assert.doesNotMatch(hidden.out, /at Module\._extensions|dlopen/);
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
      { cwd: app, env: { ...env, PATH: process.env.PATH } });
    assert.equal(hidden.code, 0, hidden.out);
    assert.match(hidden.out, /^aligned true \{"available":false,"reason":"[^"]*libdlib\S* is not installed/m);
    assert.match(hidden.out, /^photo EDETECT .*libdlib\S* is not installed\): apt-get install libdlib19\.1 /m);
  });
});

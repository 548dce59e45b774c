#!/usr/bin/env node
// Brings a fresh clone to a buildable, testable state, then builds it:
//   1. system packages (python3 with venv, cmake, a C++ compiler, dlib and OpenCV's calib3d
//      for whole photos, redis-server for the queue tests):
//      installed with apt-get when running as root, otherwise the exact command is printed;
//   2. the project's PyTorch, torch 2.13 CPU with numpy and pyyaml, in .venv/ (git-ignored;
//      scripts/torch-env.js), unless DIFFACE_PYTHON names a python to use instead;
//   3. npm packages, when node_modules is missing or older than the lock file;
//   4. the native addon against that torch's libtorch (cmake-js, incremental; Torch_DIR
//      chooses another libtorch), and the TypeScript (lib/ and test/).
// `npm test` runs this first; `npm run setup` runs it alone. `--cuda` instead makes
// .venv-cuda/ with the CUDA 13 torch 2.14.1, which only the CUDA prebuilt needs.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { VARIANTS, ensureVenv, pythonCan, pythonFor, torchInfo } = require('./torch-env');

const root = path.resolve(__dirname, '..');

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    console.error(`setup: '${[command, ...args].join(' ')}' failed with exit code ${result.status}`);
    process.exit(result.status || 1);
  }
}

function succeeds(command, args) {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

const requirements = [
  { what: 'python3 with venv and pip', ok: () => pythonCan('python3', 'import venv, ensurepip'), packages: ['python3', 'python3-venv'] },
  { what: 'cmake', ok: () => succeeds('cmake', ['--version']), packages: ['cmake'] },
  { what: 'a C++ compiler', ok: () => succeeds('c++', ['--version']), packages: ['g++'] },
  { what: 'make', ok: () => succeeds('make', ['--version']), packages: ['make'] },
  {
    what: 'dlib and its face landmark model (whole photos)',
    ok: () => fs.existsSync('/usr/share/dlib/shape_predictor_68_face_landmarks.dat') &&
      ['/usr/lib/x86_64-linux-gnu/libblas.so', '/usr/lib/x86_64-linux-gnu/liblapack.so'].every((f) => fs.existsSync(f)) &&
      fs.existsSync('/usr/include/dlib'),
    packages: ['libdlib-dev', 'libdlib-data', 'libblas-dev', 'liblapack-dev'],
  },
  {
    what: "OpenCV's calib3d (the published LMEDS face alignment in the whole-photo module)",
    ok: () => fs.existsSync('/usr/include/opencv4/opencv2/calib3d.hpp'),
    packages: ['libopencv-calib3d-dev'],
  },
  // The queue tests start their own Redis on loopback; the package itself never needs one here.
  { what: 'redis-server (the job queue tests)', ok: () => succeeds('redis-server', ['--version']), packages: ['redis-server'] },
];

function ensureSystemPackages() {
  const missing = requirements.filter((requirement) => !requirement.ok());
  if (missing.length === 0) return;
  const packages = [...new Set(missing.flatMap((requirement) => requirement.packages))];
  console.log(`setup: missing ${missing.map((r) => r.what).join(', ')}`);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !succeeds('apt-get', ['--version'])) {
    console.error('setup: install them, then run this again:\n' +
      `  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages.join(' ')}`);
    process.exit(1);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-q'], { env });
  run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { env });
  const still = requirements.filter((requirement) => !requirement.ok());
  if (still.length > 0) {
    console.error(`setup: still missing after apt-get: ${still.map((r) => r.what).join(', ')}`);
    process.exit(1);
  }
}

/** The torch the build and the tests use: .venv's, made here when missing, or DIFFACE_PYTHON's. */
function ensureTorch(variant) {
  if (!process.env[variant.pythonVariable]) {
    try {
      ensureVenv(variant);
    } catch (error) {
      const venv = path.relative(root, variant.venv);
      console.error(`setup: ${error.message}\nsetup: torch ${variant.torch} could not be installed into ${venv}/. ` +
        `Install it there by hand (\`${venv}/bin/python -m pip install torch==${variant.torch} numpy pyyaml\`, from ` +
        `https://download.pytorch.org/whl/${variant.cuda ? 'cu130' : 'cpu'} if pip's index lacks it), or set ` +
        `${variant.pythonVariable} to a python that has it.`);
      process.exit(1);
    }
  }
  const python = pythonFor(variant);
  const info = torchInfo(python);
  if (info === undefined || (variant.cuda === null && !pythonCan(python, 'import numpy, yaml'))) {
    console.error(`setup: ${python} (${variant.pythonVariable}) cannot import torch, numpy and yaml`);
    process.exit(1);
  }
  return { python, info };
}

function ensureNpmPackages() {
  const installed = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  const fresh = fs.existsSync(installed) &&
    (!fs.existsSync(lock) || fs.statSync(installed).mtimeMs >= fs.statSync(lock).mtimeMs);
  if (fresh) return;
  run('npm', fs.existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund']);
}

/** The Torch_DIR a configured build folder was made with, if any. */
function configuredTorchDir(buildDir) {
  const cache = path.join(buildDir, 'CMakeCache.txt');
  if (!fs.existsSync(cache)) return undefined;
  return /^Torch_DIR:\w+=(.*)$/m.exec(fs.readFileSync(cache, 'utf8'))?.[1];
}

/**
 * Builds the addon in `buildDir` against the libtorch whose CMake folder is `torchDir`. A
 * folder configured for another libtorch starts over: CMake keeps the libraries it found.
 */
function buildNative(buildDir, torchDir) {
  const configured = configuredTorchDir(buildDir);
  if (configured !== undefined && path.resolve(configured) !== path.resolve(torchDir)) {
    console.log(`setup: ${path.relative(root, buildDir)} was configured for ${configured}; configuring it for ${torchDir}`);
    fs.rmSync(path.join(buildDir, 'CMakeCache.txt'), { force: true });
    fs.rmSync(path.join(buildDir, 'CMakeFiles'), { recursive: true, force: true });
  }
  const bin = path.join(root, 'node_modules', '.bin');
  run(path.join(bin, 'cmake-js'), ['compile', '--log-level', 'warn', '--out', buildDir],
    { env: { ...process.env, Torch_DIR: torchDir } });
}

function buildTypeScript() {
  const bin = path.join(root, 'node_modules', '.bin');
  run(path.join(bin, 'tsc'), ['-p', 'tsconfig.json']);
  run(process.execPath, [path.join(root, 'scripts', 'esm.js')]);
  run(path.join(bin, 'tsc'), ['-p', 'test/tsconfig.json']);
}

function main() {
  if (process.argv.includes('--cuda')) {
    ensureTorch(VARIANTS.cuda);
    return;
  }
  ensureSystemPackages();
  const { info } = ensureTorch(VARIANTS.cpu);
  ensureNpmPackages();
  buildNative(path.join(root, 'build'), process.env.Torch_DIR || info.cmakeDir);
  buildTypeScript();
}

if (require.main === module) main();

module.exports = { buildNative, configuredTorchDir };

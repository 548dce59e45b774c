#!/usr/bin/env node
// Brings a fresh clone to a buildable, testable state, then builds it:
//   1. system packages (libtorch, PyTorch for the converter, cmake, a C++ compiler, dlib,
//      redis-server for the queue tests):
//      installed with apt-get when running as root, otherwise the exact command is printed;
//   2. npm packages, when node_modules is missing or older than the lock file;
//   3. the native addon (cmake-js, incremental) and the TypeScript (lib/ and test/).
// `npm test` runs this first; `npm run setup` runs it alone.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

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

function pythonCan(statement) {
  const pythons = [process.env.DIFFACE_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean);
  return pythons.some((python) => succeeds(python, ['-c', statement]));
}

function libtorchFound() {
  if (process.env.Torch_DIR) return fs.existsSync(path.join(process.env.Torch_DIR, 'TorchConfig.cmake'));
  return ['/usr/lib/x86_64-linux-gnu/cmake/Torch', '/usr/lib/aarch64-linux-gnu/cmake/Torch', '/usr/share/cmake/Torch']
    .some((dir) => fs.existsSync(path.join(dir, 'TorchConfig.cmake')));
}

const requirements = [
  { what: 'libtorch for C++ (or Torch_DIR pointing at another)', ok: libtorchFound, packages: ['libtorch-dev'] },
  { what: 'PyTorch for python3', ok: () => pythonCan('import torch'), packages: ['python3-torch'] },
  { what: 'NumPy and PyYAML for python3', ok: () => pythonCan('import numpy, yaml'), packages: ['python3-numpy', 'python3-yaml'] },
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

function ensureNpmPackages() {
  const installed = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  const fresh = fs.existsSync(installed) &&
    (!fs.existsSync(lock) || fs.statSync(installed).mtimeMs >= fs.statSync(lock).mtimeMs);
  if (fresh) return;
  run('npm', fs.existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund']);
}

function build() {
  const bin = path.join(root, 'node_modules', '.bin');
  run(path.join(bin, 'cmake-js'), ['compile', '--log-level', 'warn']);
  run(path.join(bin, 'tsc'), ['-p', 'tsconfig.json']);
  run(process.execPath, [path.join(root, 'scripts', 'esm.js')]);
  run(path.join(bin, 'tsc'), ['-p', 'test/tsconfig.json']);
}

ensureSystemPackages();
ensureNpmPackages();
build();

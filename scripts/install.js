#!/usr/bin/env node
// The package's install step. The prebuilt binaries (prebuilds/, one per libtorch variant)
// need nothing built: at load the package finds the user's libtorch and loads the variant
// that fits it (lib/binaries.ts). The addon is built from source (cmake-js) only
//   - when asked: DIFFACE_BUILD_FROM_SOURCE=1 or `npm install --build-from-source`, against
//     Torch_DIR or else the first libtorch found, and then a failure fails the install;
//   - when a libtorch is found that no prebuilt variant fits, if a compiler is there to try.
// Otherwise it says what it found and what to do, and leaves the install in place: libtorch
// may be installed afterwards, and loading says the same again, as an ENATIVE error.
// In a checkout of the repository, scripts/setup.js builds instead.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function wantsSource() {
  const asked = process.env.DIFFACE_BUILD_FROM_SOURCE ?? process.env.npm_config_build_from_source;
  return asked !== undefined && asked !== '' && asked !== '0' && asked !== 'false';
}

function loads() {
  try {
    require(path.join(root, 'dist', 'native.js')).native();
    return { ok: true };
  } catch (error) {
    return { ok: false, message: String(error && error.message) };
  }
}

function canCompile() {
  return ['cmake', 'c++'].every((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0);
}

/** Torch_DIR as given, else the CMake folder of the first libtorch found. */
function torchDir() {
  if (process.env.Torch_DIR) return process.env.Torch_DIR;
  const { findLibtorches } = require(path.join(root, 'dist', 'libtorch.js'));
  const { torchDirOf } = require(path.join(root, 'dist', 'binaries.js'));
  const found = findLibtorches()[0];
  return found === undefined ? undefined : torchDirOf(found);
}

function build(dir) {
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    return false;
  }
  console.error(`difface: building the native addon from source against ${dir ?? 'the system libtorch'}`);
  const env = dir === undefined ? process.env : { ...process.env, Torch_DIR: dir };
  const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--log-level', 'warn'], { cwd: root, stdio: 'inherit', env });
  return result.status === 0;
}

const HOW_TO_BUILD = [
  'A build from source needs:',
  '  - libtorch for C++, such as the one inside a Python torch install, chosen with Torch_DIR:',
  '    Torch_DIR=$(python3 -c "import torch.utils; print(torch.utils.cmake_prefix_path)")/Torch',
  '  - cmake and a C++20 compiler: apt-get install cmake g++',
  'then run: npm rebuild difface --build-from-source',
].join('\n');

function main() {
  if (fs.existsSync(path.join(root, 'scripts', 'setup.js'))) return 0;
  if (wantsSource()) {
    if (build(torchDir()) && loads().ok) return 0;
    console.error(`difface: the native addon could not be built.\n${HOW_TO_BUILD}`);
    return 1;
  }
  const first = loads();
  if (first.ok) return 0;
  const dir = torchDir();
  if (dir !== undefined && canCompile() && build(dir) && loads().ok) return 0;
  console.warn(`difface: installed, but its native addon cannot load here yet: ${first.message}`);
  return 0;
}

process.exit(main());

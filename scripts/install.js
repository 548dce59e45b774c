#!/usr/bin/env node
// The package's install step. A prebuilt binary (prebuilds/) that loads needs nothing more:
// no compiler, no CMake, no Python, nothing downloaded. The addon is built from source
// (cmake-js, against Debian's libtorch or the one Torch_DIR names) only when no binary
// loads, or when asked: DIFFACE_BUILD_FROM_SOURCE=1 or `npm install --build-from-source`
// (for a CUDA libtorch, say).
'use strict';

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function wantsSource() {
  const asked = process.env.DIFFACE_BUILD_FROM_SOURCE ?? process.env.npm_config_build_from_source;
  return asked !== undefined && asked !== '' && asked !== '0' && asked !== 'false';
}

function loads() {
  try {
    require('node-gyp-build')(root);
    return { ok: true };
  } catch (error) {
    return { ok: false, message: String(error && error.message) };
  }
}

function build() {
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    return false;
  }
  const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--log-level', 'warn'], { cwd: root, stdio: 'inherit' });
  return result.status === 0;
}

const first = wantsSource() ? { ok: false, message: 'a build from source was asked for' } : loads();
if (first.ok) process.exit(0);
console.error(`difface: no prebuilt binary loads here (${first.message.split('\n')[0]}); building from source`);
if (build() && loads().ok) process.exit(0);
console.error([
  'difface: the native addon could not be built. It needs:',
  '  - libtorch for C++: apt-get install libtorch-dev (or set Torch_DIR to another libtorch,',
  '    such as the CUDA one of a Python install: $(python3 -c "import torch; print(torch.utils.cmake_prefix_path)")/Torch)',
  '  - cmake and a C++17 compiler: apt-get install cmake g++',
  'then run: npm rebuild difface',
].join('\n'));
process.exit(1);

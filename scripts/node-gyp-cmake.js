#!/usr/bin/env node
// prebuildify drives node-gyp; this addon builds with cmake-js. prebuildify runs this in
// node-gyp's place (--node-gyp), and it runs cmake-js, which leaves build/Release/difface.node
// where prebuildify looks. node-gyp's arguments (target, devdir) do not apply to a
// Node-API build and are ignored; Torch_DIR chooses the libtorch as for any build.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--log-level', 'warn'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);

// prebuildify strips the binary in place and moves it away. A process that has the build
// loaded (the test suite, say) must keep its mapped copy intact, so hand prebuildify a
// fresh copy under the same name.
const built = path.join(root, 'build', 'Release', 'difface.node');
const copy = `${built}.${process.pid}`;
fs.copyFileSync(built, copy);
fs.renameSync(copy, built);

// The whole-photo module (built where dlib is) goes beside it, in a folder of its own so
// that node-gyp-build, which loads the engine, never mistakes one for the other.
const faces = path.join(root, 'build', 'faces', 'difface_faces.node');
const target = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'faces');
fs.rmSync(target, { recursive: true, force: true });
if (fs.existsSync(faces)) {
  fs.mkdirSync(target, { recursive: true });
  fs.copyFileSync(faces, path.join(target, 'difface_faces.node'));
  spawnSync('strip', ['--strip-all', path.join(target, 'difface_faces.node')], { stdio: 'ignore' });
}

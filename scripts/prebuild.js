#!/usr/bin/env node
// Makes the prebuilt binaries the package ships, one per libtorch variant:
//   prebuilds/linux-x64/torch2.13-cpu/   against torch 2.13 CPU    (.venv, scripts/setup.js)
//   prebuilds/linux-x64/torch2.14-cu13/  against torch 2.14.1 CUDA 13 (.venv-cuda, `npm run setup:cuda`)
// each holding difface.node, linked without a run path (the package's loader loads the
// user's libtorch first, lib/preload.ts), and variant.json, which says what it runs on. The
// whole-photo module, which needs no libtorch, goes to prebuilds/linux-x64/faces/.
//
//   node scripts/prebuild.js            every variant (what `npm pack` runs)
//   DIFFACE_PREBUILD_VARIANTS=cpu ...   only these (cpu, cuda)
//
// A variant whose torch is missing stops the script: a package must not silently lack one.
// Variants not made in a run are removed, so no binary of older sources is packed.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { buildNative, configuredTorchDir } = require('./setup');
const { VARIANTS, root, pythonFor, torchInfo, matches } = require('./torch-env');

const target = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);

function requestedVariants() {
  const asked = (process.env.DIFFACE_PREBUILD_VARIANTS || Object.keys(VARIANTS).join(','))
    .split(',').map((name) => name.trim()).filter(Boolean);
  const unknown = asked.filter((name) => !(name in VARIANTS));
  if (unknown.length > 0) {
    throw new Error(`unknown variant ${unknown.join(', ')} in DIFFACE_PREBUILD_VARIANTS (known: ${Object.keys(VARIANTS).join(', ')})`);
  }
  return asked.map((name) => VARIANTS[name]);
}

function torchOf(variant) {
  const python = pythonFor(variant);
  const info = torchInfo(python);
  if (!matches(variant, info)) {
    const how = variant.cuda === null ? 'npm run setup' : 'npm run setup:cuda';
    throw new Error(`the ${variant.name} variant needs torch ${variant.torch}${variant.cuda ? ` (CUDA ${variant.cuda})` : ' (CPU)'}, ` +
      `and ${python} has ${info ? `torch ${info.version}` : 'none'}: run \`${how}\`, or set ${variant.pythonVariable} to a python that has it`);
  }
  return info;
}

/** The build folder of a variant: the main build/ when it is configured for this torch, else one of its own. */
function buildDirFor(variant, info) {
  const configured = configuredTorchDir(path.join(root, 'build'));
  if (configured && path.resolve(configured) === path.resolve(info.cmakeDir)) return path.join(root, 'build');
  return path.join(root, 'build', 'variants', variant.name);
}

/** Copies through a temporary name: a process may have the old file mapped. */
function install(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  const temporary = `${to}.${process.pid}`;
  fs.copyFileSync(from, temporary);
  spawnSync('strip', ['--strip-unneeded', temporary], { stdio: 'inherit' });
  fs.renameSync(temporary, to);
}

function prebuild(variant) {
  const info = torchOf(variant);
  const buildDir = buildDirFor(variant, info);
  console.log(`prebuild: ${variant.name} against torch ${info.version} (${info.libDir}) in ${path.relative(root, buildDir)}/`);
  buildNative(buildDir, info.cmakeDir);
  const dir = path.join(target, variant.name);
  install(path.join(buildDir, 'portable', 'difface.node'), path.join(dir, 'difface.node'));
  const description = { name: variant.name, torch: info.version, cuda: info.cuda ?? null, install: variant.userInstall };
  fs.writeFileSync(path.join(dir, 'variant.json'), JSON.stringify(description, null, 2) + '\n');
  return buildDir;
}

function prebuildFaces(buildDir) {
  const built = path.join(buildDir, 'faces', 'difface_faces.node');
  const dir = path.join(target, 'faces');
  fs.rmSync(dir, { recursive: true, force: true });
  if (fs.existsSync(built)) install(built, path.join(dir, 'difface_faces.node'));
  else console.warn('prebuild: no whole-photo module was built (dlib is missing), so none is packed');
}

function main() {
  const variants = requestedVariants();
  const buildDirs = variants.map(prebuild);
  prebuildFaces(buildDirs[0]);
  for (const name of fs.readdirSync(target)) {
    if (name !== 'faces' && !variants.some((variant) => variant.name === name)) {
      fs.rmSync(path.join(target, name), { recursive: true, force: true });
    }
  }
}

try {
  main();
} catch (error) {
  console.error(`prebuild: ${error.message}`);
  process.exit(1);
}

// The two PyTorch installs this project builds against, each in a virtual environment of
// its own inside the checkout (git-ignored), and what a build needs to know about them.
//   .venv       torch 2.13 CPU, numpy, pyyaml: the default build, the tests, the converter,
//               the benchmark's eager side. scripts/setup.js makes it.
//   .venv-cuda  torch 2.14.1 for CUDA 13 with its NVIDIA wheels (about 4.5 GB): only for
//               building and checking the CUDA prebuilt. `npm run setup:cuda` makes it.
// DIFFACE_PYTHON and DIFFACE_CUDA_PYTHON name another python to use instead of each.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

// Packages that torch 2.14.1's metadata asks for but that loading libtorch does not need
// (Python bindings of the CUDA driver, and the Triton compiler for torch.compile); the
// local wheel store has neither.
const CUDA_SKIPPED_REQUIREMENTS = ['cuda-bindings', 'triton'];

const VARIANTS = {
  cpu: {
    name: 'torch2.13-cpu',
    torch: '2.13.0+cpu',
    cuda: null,
    venv: path.join(root, '.venv'),
    pythonVariable: 'DIFFACE_PYTHON',
    // What a user runs to get this torch (written into the prebuilt's description).
    userInstall: 'python3 -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu',
  },
  cuda: {
    name: 'torch2.14-cu13',
    torch: '2.14.1',
    cuda: '13.0',
    venv: path.join(root, '.venv-cuda'),
    pythonVariable: 'DIFFACE_CUDA_PYTHON',
    userInstall: 'python3 -m pip install torch==2.14.1',
  },
};

function venvPython(variant) {
  return path.join(variant.venv, 'bin', 'python');
}

/** The python of a variant: its variable, else its virtual environment (which may not exist yet). */
function pythonFor(variant) {
  return process.env[variant.pythonVariable] || venvPython(variant);
}

/**
 * What `python` says about its torch, without building anything: version, CUDA version, and
 * the folders a build needs. Undefined when it has no torch (or no python).
 */
function torchInfo(python) {
  const script = [
    'import json, os, torch, torch.utils',
    'print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda,',
    '  "cmakeDir": os.path.join(torch.utils.cmake_prefix_path, "Torch"),',
    '  "libDir": os.path.join(os.path.dirname(torch.__file__), "lib")}))',
  ].join('\n');
  const probe = spawnSync(python, ['-c', script], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return undefined;
  return JSON.parse(probe.stdout.trim().split('\n').pop());
}

/** Whether a python's torch is the variant's (same major.minor, same CUDA or none). */
function matches(variant, info) {
  const minor = (version) => version.split('.').slice(0, 2).join('.');
  return info !== undefined && minor(info.version) === minor(variant.torch) && (info.cuda ?? null) === variant.cuda;
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`'${[command, ...args].join(' ')}' failed with exit code ${result.status}`);
  }
}

function pip(variant, args) {
  // --retries 0: with only a local wheel store reachable, a missing wheel fails at once
  // instead of retrying an index it cannot reach.
  run(venvPython(variant), ['-m', 'pip', 'install', '--retries', '0', '--disable-pip-version-check', '-q', ...args]);
}

/** The requirements of an installed torch that its CUDA libraries come from. */
function cudaRequirements(variant) {
  const script = [
    'from importlib.metadata import requires',
    'print("\\n".join(r.split(";")[0].strip() for r in requires("torch") if "extra ==" not in r))',
  ].join('\n');
  const listed = spawnSync(venvPython(variant), ['-c', script], { encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`cannot read torch's requirements:\n${listed.stderr}`);
  return listed.stdout.split('\n').map((line) => line.trim()).filter(Boolean)
    .filter((requirement) => !CUDA_SKIPPED_REQUIREMENTS.some((name) => requirement.startsWith(name)));
}

/**
 * Makes the variant's virtual environment when it lacks its torch. The CUDA torch's own
 * requirements include packages the store does not have and libtorch does not need, so it
 * is installed without them, then with every other requirement it lists.
 */
function ensureVenv(variant, log = console.log) {
  if (matches(variant, torchInfo(venvPython(variant))) && (variant.cuda || pythonCan(venvPython(variant), 'import numpy, yaml'))) {
    return;
  }
  log(`setup: making ${path.relative(root, variant.venv)}/ with torch ${variant.torch}`);
  if (!fs.existsSync(venvPython(variant))) run('python3', ['-m', 'venv', variant.venv]);
  if (variant.cuda === null) {
    pip(variant, [`torch==${variant.torch}`, 'numpy', 'pyyaml']);
    return;
  }
  pip(variant, ['--no-deps', `torch==${variant.torch}`]);
  pip(variant, [...cudaRequirements(variant), 'numpy', 'pyyaml']);
}

function pythonCan(python, statement) {
  const result = spawnSync(python, ['-c', statement], { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

module.exports = { VARIANTS, root, pythonFor, venvPython, torchInfo, matches, ensureVenv, pythonCan };

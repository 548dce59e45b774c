// How the package tells one libtorch from another, and which prebuilt variant it takes for
// which: on folders laid out as a pip torch, a C++ distribution and Debian lay theirs out
// (empty files stand for the libraries: only names and version files are read), on the
// project's own torch, and on the ELF headers of the addon built here.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { repoRoot, tempDir } from './helpers/env';

// The types come from the compiled package's declarations; the code through require(),
// because these modules are internal and not exported by the package.
import type { Variant } from '../dist/binaries';
import type { Libtorch } from '../dist/libtorch';

/* eslint-disable @typescript-eslint/no-require-imports */
const libtorch = require(path.join(repoRoot, 'dist', 'libtorch.js')) as {
  describeLibtorch(dir: string, from: string): Libtorch | undefined;
};
const binaries = require(path.join(repoRoot, 'dist', 'binaries.js')) as {
  variantFits(variant: Variant, found: Libtorch): boolean;
  mismatchMessage(variants: Variant[], found: Libtorch[]): string;
};
const elf = require(path.join(repoRoot, 'dist', 'elf.js')) as { neededLibraries(file: string): string[] };
/* eslint-enable @typescript-eslint/no-require-imports */

function folder(files: Record<string, string>): string {
  const dir = tempDir('libtorch');
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

const CPU: Variant = { name: 'torch2.13-cpu', torch: '2.13.0+cpu', cuda: null, install: 'pip install torch==2.13.0', file: '' };
const CUDA: Variant = { name: 'torch2.14-cu13', torch: '2.14.1+cu130', cuda: '13.0', install: 'pip install torch==2.14.1', file: '' };
const found = (version: string, cuda: string | null | undefined, problem?: string): Libtorch =>
  ({ from: 'test', root: '/x/torch', libDir: '/x/torch/lib', version, cuda, ...(problem ? { problem } : {}) });

describe('finding libtorch', function () {
  it('reads a pip torch: its version.py, CPU or CUDA', function () {
    const cpu = folder({ 'torch/version.py': "__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\n",
      'torch/lib/libc10.so': '', 'torch/lib/libtorch_cpu.so': '', 'torch/lib/libtorch.so': '' });
    assert.deepEqual(libtorch.describeLibtorch(path.join(cpu, 'torch'), 'test'),
      { from: 'test', root: path.join(cpu, 'torch'), libDir: path.join(cpu, 'torch', 'lib'), version: '2.13.0+cpu', cuda: null });
    const cuda = folder({ 'torch/version.py': "__version__ = '2.14.1+cu130'\ncuda: Optional[str] = '13.0'\n",
      'torch/lib/libc10.so': '', 'torch/lib/libtorch_cpu.so': '', 'torch/lib/libtorch.so': '', 'torch/lib/libtorch_cuda.so': '' });
    const described = libtorch.describeLibtorch(path.join(cuda, 'torch', 'lib'), 'test');
    assert.equal(described?.root, path.join(cuda, 'torch'), 'the lib folder itself names the same torch');
    assert.equal(described?.version, '2.14.1+cu130');
    assert.equal(described?.cuda, '13.0');
  });

  it('reads a C++ distribution by its build-version, and Debian by its library names', function () {
    const distribution = folder({ 'libtorch/build-version': '2.14.1+cu130\n', 'libtorch/lib/libc10.so': '',
      'libtorch/lib/libtorch_cpu.so': '', 'libtorch/lib/libtorch.so': '', 'libtorch/lib/libtorch_cuda.so': '' });
    const described = libtorch.describeLibtorch(path.join(distribution, 'libtorch'), 'test');
    assert.equal(described?.version, '2.14.1+cu130');
    assert.equal(described?.cuda, '13.0');
    const debian = folder({ 'libtorch.so.1.13': '', 'libtorch_cpu.so.1.13': '', 'libc10.so.1.13': '', 'libpng.so': '' });
    const old = libtorch.describeLibtorch(debian, 'test');
    assert.equal(old?.version, '1.13');
    assert.equal(old?.cuda, null);
    assert.equal(old?.problem, undefined);
  });

  it('names what a half-installed torch lacks, and finds nothing where there is no libtorch', function () {
    const broken = folder({ 'torch/version.py': "__version__ = '2.13.0+cpu'\ncuda = None\n", 'torch/lib/libc10.so': '', 'torch/lib/libtorch.so': '' });
    assert.equal(libtorch.describeLibtorch(path.join(broken, 'torch'), 'test')?.problem,
      `libtorch_cpu.so missing from ${path.join(broken, 'torch', 'lib')}`);
    assert.equal(libtorch.describeLibtorch(folder({ 'libpng.so': '' }), 'test'), undefined);
  });

  it('reads the project\'s own torch as torch 2.13 for the CPU', function () {
    const lib = path.join(repoRoot, '.venv', 'lib');
    const torch = (fs.existsSync(lib) ? fs.readdirSync(lib) : []).map((python) => path.join(lib, python, 'site-packages', 'torch'))
      .find((dir) => fs.existsSync(dir));
    if (torch === undefined) {
      // eslint-disable-next-line no-console
      console.log('      skipped: no .venv here (DIFFACE_PYTHON names another python)');
      this.skip();
    }
    const described = libtorch.describeLibtorch(torch, 'test');
    assert.match(described?.version ?? '', /^2\.13\.\d+\+cpu$/);
    assert.equal(described?.cuda, null);
    assert.ok(binaries.variantFits(CPU, described as Libtorch));
  });
});

describe('choosing a prebuilt variant', function () {
  it('fits the same torch major.minor and CUDA major, and nothing else', function () {
    assert.ok(binaries.variantFits(CPU, found('2.13.1+cpu', null)));
    assert.ok(!binaries.variantFits(CPU, found('2.12.0+cpu', null)));
    assert.ok(!binaries.variantFits(CPU, found('2.13.0+cu130', '13.0')));
    assert.ok(binaries.variantFits(CUDA, found('2.14.0', '13.1')));
    assert.ok(!binaries.variantFits(CUDA, found('2.14.1+cu128', '12.8')));
    assert.ok(!binaries.variantFits(CUDA, found('2.14.1', undefined)), 'an unknown CUDA version fits nothing');
    assert.ok(!binaries.variantFits(CPU, found('2.13.0+cpu', null, 'libtorch.so missing from /x')), 'nor does a broken one');
  });

  it('says where it looked when it found no libtorch at all', function () {
    const message = binaries.mismatchMessage([CPU, CUDA], []);
    assert.match(message, /^difface's prebuilt binaries run on torch 2\.13 \(CPU\) and torch 2\.14 \(CUDA 13\), and no libtorch was found \(looked at DIFFACE_LIBTORCH, the torch of python3 and python on PATH, and /);
    assert.match(message, /`pip install torch==2\.13\.0` \(CPU\) or `pip install torch==2\.14\.1` \(CUDA 13\)/);
    assert.match(message, /`Torch_DIR=<libtorch>\/share\/cmake\/Torch npm rebuild difface --build-from-source`$/);
  });
});

describe('reading ELF headers', function () {
  it('lists the libraries the addon built here needs', function () {
    const needed = elf.neededLibraries(path.join(repoRoot, 'build', 'Release', 'difface.node'));
    assert.ok(needed.some((name) => /^libtorch\.so/.test(name)), needed.join(' '));
    assert.ok(needed.some((name) => /^libc10\.so/.test(name)), needed.join(' '));
    assert.ok(needed.includes('libc.so.6'), needed.join(' '));
  });

  it('refuses a file that is not ELF', function () {
    const text = path.join(folder({ 'a.so': 'not an ELF file, only text' }), 'a.so');
    assert.throws(() => elf.neededLibraries(text), /not an ELF file/);
  });
});

/**
 * Finding the user's libtorch, and what it is: a torch inside a Python install, a C++
 * distribution of libtorch, or Debian's. In order: DIFFACE_LIBTORCH, the torch of the python
 * on PATH, then the usual places.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Libtorch {
  /** Where it was found: 'DIFFACE_LIBTORCH', 'python3 on PATH', 'the usual places'. */
  from: string;
  /** The torch package or libtorch folder. */
  root: string;
  /** The folder holding libtorch.so and libc10.so. */
  libDir: string;
  /** '2.13.0+cpu', '2.14.1', '1.13'; undefined when nothing says. */
  version: string | undefined;
  /** The CUDA version it was built for ('13.0'), null for a CPU build, undefined when unknown. */
  cuda: string | null | undefined;
  /** What is wrong with it, if something is (a library missing, say). */
  problem?: string;
}

const MULTIARCH = `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function listIfExists(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** '+cu130' in a version means CUDA 13.0; '+cpu', CPU only. */
function cudaFromTag(version: string): string | null | undefined {
  const tag = /\+(cu(\d+)|cpu)$/.exec(version);
  if (tag === null) return undefined;
  if (tag[1] === 'cpu') return null;
  const digits = tag[2] ?? '';
  return `${digits.slice(0, -1)}.${digits.slice(-1)}`;
}

/** torch/version.py of a Python install. */
function pythonVersion(root: string): Pick<Libtorch, 'version' | 'cuda'> | undefined {
  const text = readIfExists(path.join(root, 'version.py'));
  if (text === undefined) return undefined;
  const version = /^__version__\s*=\s*['"]([^'"]+)['"]/m.exec(text)?.[1];
  const cuda = /^cuda\s*(?::[^=]*)?=\s*(?:['"]([^'"]+)['"]|None)/m.exec(text);
  return { version, cuda: cuda === null ? undefined : cuda[1] ?? null };
}

/** build-version of a C++ distribution ("2.13.0+cpu"). */
function distributionVersion(root: string): Pick<Libtorch, 'version' | 'cuda'> | undefined {
  const version = readIfExists(path.join(root, 'build-version'))?.trim();
  return version === undefined ? undefined : { version, cuda: cudaFromTag(version) };
}

/** Debian names its libraries libtorch.so.1.13. */
function sonameVersion(libDir: string): Pick<Libtorch, 'version' | 'cuda'> | undefined {
  const versioned = listIfExists(libDir).map((f) => /^libtorch\.so\.(\d+\.\d+)$/.exec(f)?.[1]).find(Boolean);
  return versioned === undefined ? undefined : { version: versioned, cuda: undefined };
}

function hasLibrary(libDir: string, name: string): boolean {
  return listIfExists(libDir).some((f) => f === `${name}.so` || f.startsWith(`${name}.so.`));
}

/**
 * What `dir` holds, if it is a libtorch: a torch package or C++ distribution (with lib/ inside),
 * or the library folder itself.
 */
export function describeLibtorch(dir: string, from: string): Libtorch | undefined {
  const root = path.resolve(dir);
  const libDir = fs.existsSync(path.join(root, 'lib')) && !hasLibrary(root, 'libtorch') ? path.join(root, 'lib') : root;
  const parent = libDir === root ? path.dirname(root) : root;
  if (!hasLibrary(libDir, 'libtorch') && !hasLibrary(libDir, 'libtorch_cpu') && !fs.existsSync(path.join(parent, 'version.py'))) {
    return undefined;
  }
  const described = pythonVersion(parent) ?? distributionVersion(parent) ?? sonameVersion(libDir) ?? { version: undefined, cuda: undefined };
  const cuda = described.cuda !== undefined ? described.cuda : hasLibrary(libDir, 'libtorch_cuda') ? undefined : null;
  const found: Libtorch = { from, root: parent, libDir, version: described.version, cuda };
  const missing = ['libc10', 'libtorch_cpu', 'libtorch'].filter((name) => !hasLibrary(libDir, name));
  if (missing.length > 0) found.problem = `${missing.map((name) => `${name}.so`).join(', ')} missing from ${libDir}`;
  return found;
}

/** Where `python` would import torch from, without importing it (which takes seconds). */
function pythonTorchFolder(python: string): string | undefined {
  const script = 'import importlib.util as u; s = u.find_spec("torch"); print(s.submodule_search_locations[0] if s else "")';
  const probe = spawnSync(python, ['-c', script], { encoding: 'utf8', timeout: 20_000 });
  if (probe.error || probe.status !== 0) return undefined;
  const folder = probe.stdout.trim();
  return folder === '' ? undefined : folder;
}

function sitePackagesTorch(prefix: string): string[] {
  const lib = path.join(prefix, 'lib');
  return listIfExists(lib).filter((name) => /^python3\.\d+$/.test(name)).sort().reverse()
    .flatMap((name) => ['site-packages', 'dist-packages'].map((site) => path.join(lib, name, site, 'torch')));
}

/** The usual places, in order: active environments, user and local installs, C++ distributions, Debian. */
export function usualPlaces(): string[] {
  const home = os.homedir();
  return [
    ...[process.env.VIRTUAL_ENV, process.env.CONDA_PREFIX].filter((p): p is string => Boolean(p)).flatMap(sitePackagesTorch),
    ...sitePackagesTorch(path.join(home, '.local')),
    ...sitePackagesTorch('/usr/local'),
    '/usr/local/libtorch',
    '/opt/libtorch',
    path.join(home, 'libtorch'),
    path.join('/usr/lib', MULTIARCH),
  ];
}

/**
 * Every libtorch found, in the order to prefer them. DIFFACE_LIBTORCH, when set, is the only
 * one looked at: the user chose it.
 */
export function findLibtorches(): Libtorch[] {
  const chosen = process.env.DIFFACE_LIBTORCH;
  if (chosen) {
    return [describeLibtorch(chosen, 'DIFFACE_LIBTORCH') ??
      { from: 'DIFFACE_LIBTORCH', root: chosen, libDir: chosen, version: undefined, cuda: undefined, problem: `${chosen} holds no libtorch` }];
  }
  const found: Libtorch[] = [];
  const real = (dir: string): string => (fs.existsSync(dir) ? fs.realpathSync(dir) : dir);
  const add = (candidate: Libtorch | undefined): void => {
    if (candidate !== undefined && !found.some((f) => real(f.libDir) === real(candidate.libDir))) found.push(candidate);
  };
  for (const python of ['python3', 'python']) {
    const folder = pythonTorchFolder(python);
    if (folder !== undefined) add(describeLibtorch(folder, `${python} on PATH`));
  }
  for (const place of usualPlaces()) {
    if (fs.existsSync(place)) add(describeLibtorch(place, 'the usual places'));
  }
  return found;
}

/** "torch 2.13.0+cpu (CPU)" */
export function libtorchName(found: Pick<Libtorch, 'version' | 'cuda'>): string {
  const kind = found.cuda === null ? 'CPU' : found.cuda === undefined ? 'CUDA unknown' : `CUDA ${found.cuda}`;
  return `torch ${found.version ?? '(version unknown)'} (${kind})`;
}

/**
 * For a torch inside a Python install, the folders of the NVIDIA wheels beside it
 * (site-packages/nvidia/<part>/lib), where a CUDA torch finds cuDNN, cuBLAS and the CUDA runtime.
 */
export function nvidiaWheelFolders(found: Pick<Libtorch, 'root'>): string[] {
  const nvidia = path.join(path.dirname(found.root), 'nvidia');
  return listIfExists(nvidia).map((part) => path.join(nvidia, part, 'lib')).filter((dir) => fs.existsSync(dir));
}

/**
 * Which addon binary to load, and against which libtorch: the one built here (build/, against
 * the libtorch it records), else the prebuilt variant that matches the user's libtorch
 * (prebuilds/<platform>-<arch>/<variant>/, each described by its variant.json).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFaceError } from './errors';
import { Libtorch, describeLibtorch, findLibtorches, libtorchName, usualPlaces } from './libtorch';

/** A prebuilt binary and the libtorch it was built against. */
export interface Variant {
  /** 'torch2.13-cpu', 'torch2.14-cu13'. */
  name: string;
  torch: string;
  cuda: string | null;
  /** The command that installs a torch this variant runs on. */
  install: string;
  file: string;
}

export interface BinaryChoice {
  file: string;
  kind: 'built' | 'prebuilt';
  /** The prebuilt variant; for a built addon, undefined. */
  variant?: Variant;
  /** The libtorch it runs on; undefined for a build that recorded none. */
  libtorch?: Libtorch;
}

export const REBUILD = 'npm rebuild difface --build-from-source';

function prebuildsDir(root: string): string {
  return path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
}

/** The prebuilt variants of this platform, in the order they are listed. */
export function prebuiltVariants(root: string): Variant[] {
  const dir = prebuildsDir(root);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).sort()
    .map((name) => path.join(dir, name, 'variant.json'))
    .filter((file) => fs.existsSync(file))
    .map((file) => ({ ...(JSON.parse(fs.readFileSync(file, 'utf8')) as Omit<Variant, 'file'>), file: path.join(path.dirname(file), 'difface.node') }));
}

/** The addon built on this machine, with the libtorch its build recorded. */
export function builtBinary(root: string): BinaryChoice | undefined {
  const file = path.join(root, 'build', 'Release', 'difface.node');
  if (!fs.existsSync(file)) return undefined;
  const record = path.join(root, 'build', 'libtorch.json');
  if (!fs.existsSync(record)) return { file, kind: 'built' };
  const { libDir } = JSON.parse(fs.readFileSync(record, 'utf8')) as { libDir: string };
  const libtorch = describeLibtorch(libDir, 'the build');
  if (libtorch === undefined) {
    throw new DifFaceError('ENATIVE', `the difface addon in ${path.dirname(file)} was built against the libtorch in ${libDir}, ` +
      `which is no longer there: rebuild it against the libtorch you have, \`${REBUILD}\``);
  }
  return { file, kind: 'built', libtorch };
}

const minor = (version: string | undefined): string | undefined => version?.split('.').slice(0, 2).join('.');
const cudaMajor = (cuda: string | null | undefined): string | undefined => cuda === null ? 'cpu' : cuda?.split('.')[0];

/** Whether a prebuilt variant runs on a libtorch: same torch major.minor, same CUDA major (or both CPU). */
export function variantFits(variant: Variant, libtorch: Libtorch): boolean {
  return libtorch.problem === undefined && minor(libtorch.version) === minor(variant.torch) &&
    cudaMajor(libtorch.cuda) !== undefined && cudaMajor(libtorch.cuda) === cudaMajor(variant.cuda);
}

function variantLabel(variant: Variant): string {
  return `torch ${minor(variant.torch)} (${variant.cuda === null ? 'CPU' : `CUDA ${cudaMajor(variant.cuda)}`})`;
}

/** The folder a build from source would take as Torch_DIR for this libtorch. */
export function torchDirOf(libtorch: Libtorch): string {
  const candidates = [path.join(libtorch.root, 'share', 'cmake', 'Torch'), path.join(libtorch.libDir, 'cmake', 'Torch')];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'TorchConfig.cmake'))) ?? '<libtorch>/share/cmake/Torch';
}

function describeFound(libtorch: Libtorch): string {
  return `${libtorchName(libtorch)} at ${libtorch.libDir} (${libtorch.from})${libtorch.problem ? `, which is incomplete: ${libtorch.problem}` : ''}`;
}

/** The ENATIVE message when no prebuilt variant fits the libtorch found. */
export function mismatchMessage(variants: Variant[], found: Libtorch[]): string {
  const shipped = variants.map(variantLabel).join(' and ');
  const what = found.length === 0
    ? `no libtorch was found (looked at DIFFACE_LIBTORCH, the torch of python3 and python on PATH, and ${usualPlaces().join(', ')})`
    : `the libtorch found ${found.length === 1 ? 'is' : 'are'} ${found.map(describeFound).join('; ')}`;
  const installs = variants.map((v) => `\`${v.install}\` (${v.cuda === null ? 'CPU' : `CUDA ${cudaMajor(v.cuda)}`})`).join(' or ');
  const build = found[0] !== undefined
    ? `\`Torch_DIR=${torchDirOf(found[0])} ${REBUILD}\``
    : `\`Torch_DIR=<libtorch>/share/cmake/Torch ${REBUILD}\``;
  return `difface's prebuilt binaries run on ${shipped}, and ${what}. Install a matching torch into the python on PATH, ` +
    `${installs}, or set DIFFACE_LIBTORCH to the folder of one; or build difface from source against the libtorch you have ` +
    `(needs cmake and a C++20 compiler): ${build}`;
}

/** The binary to load here; throws ENATIVE, saying what was found and what to do, when none fits. */
export function chooseBinary(root: string): BinaryChoice {
  const built = builtBinary(root);
  if (built !== undefined) return built;
  const variants = prebuiltVariants(root);
  if (variants.length === 0) {
    throw new DifFaceError('ENATIVE', `difface has no binary for ${process.platform}-${process.arch} here; build one with ` +
      `\`${REBUILD}\` (needs cmake, a C++20 compiler and libtorch, such as the torch of a Python install)`);
  }
  const found = findLibtorches();
  for (const libtorch of found) {
    const variant = variants.find((v) => variantFits(v, libtorch));
    if (variant !== undefined) return { file: variant.file, kind: 'prebuilt', variant, libtorch };
  }
  throw new DifFaceError('ENATIVE', mismatchMessage(variants, found));
}

/**
 * The manifest of published files `difface models fetch` can get (models/manifest.json, or
 * one given with --manifest): each file's name, group, release URL, size and sha256 where
 * known, and how the published loader finds the weights inside it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFaceError } from './errors';
import { packageRoot } from './native';

const MANIFEST_FORMAT = 'difface-manifest';
const MANIFEST_VERSION = 1;

export interface ManifestFile {
  name: string;
  group: string;
  /** The release URL as written in the published code. */
  url: string;
  /** null: no public source reports it. */
  bytes: number | null;
  sha256: string | null;
  /** Keys holding the weights, tried in order ({"state_dict": ...}, "params_ema", ...). */
  unwrap: string[];
  /** Removed from the names that carry it ("module." from DataParallel). */
  stripPrefix: string;
}

export interface ManifestGroup {
  description: string;
  /** Fetched when no group is named. */
  default: boolean;
  /** The folder of the weight-less architectures these files fill, or null when this version has none. */
  architecture: string | null;
  /** Network role -> file name. */
  networks: Record<string, string>;
  /**
   * Where inside the fetch folder the model directory of these networks is made ('' for the
   * folder itself): one folder holds one model card, so a second task's networks get their own.
   */
  modelDir: string;
}

export interface Manifest {
  /** The manifest file it was read from. */
  path: string;
  groups: Record<string, ManifestGroup>;
  files: ManifestFile[];
}

export function defaultManifestPath(): string {
  return path.join(packageRoot, 'models', 'manifest.json');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(file: string, problem: string): never {
  throw new DifFaceError('EARG', `the manifest '${file}' ${problem}`);
}

function checkFile(file: string, value: unknown, groups: Record<string, ManifestGroup>): ManifestFile {
  if (!isObject(value) || typeof value.name !== 'string' || typeof value.url !== 'string' || typeof value.group !== 'string') {
    invalid(file, 'has a file entry without name, url and group');
  }
  const name = value.name;
  if (name === '' || path.basename(name) !== name || name.startsWith('.')) invalid(file, `names a file '${name}' that is not a plain file name`);
  if (!(value.group in groups)) invalid(file, `puts ${name} in the unknown group '${value.group}'`);
  if (!/^https?:\/\//.test(value.url)) invalid(file, `gives ${name} the URL '${value.url}', which is not http(s)`);
  const bytes = value.bytes ?? null;
  if (bytes !== null && !(Number.isSafeInteger(bytes) && (bytes as number) > 0)) invalid(file, `gives ${name} a size that is not a positive integer`);
  const sha256 = value.sha256 ?? null;
  if (sha256 !== null && !(typeof sha256 === 'string' && /^[0-9a-f]{64}$/.test(sha256))) invalid(file, `gives ${name} a sha256 that is not 64 hex digits`);
  const unwrap = value.unwrap ?? [];
  if (!Array.isArray(unwrap) || !unwrap.every((key) => typeof key === 'string')) invalid(file, `gives ${name} an unwrap that is not a list of keys`);
  const stripPrefix = value.stripPrefix ?? '';
  if (typeof stripPrefix !== 'string') invalid(file, `gives ${name} a stripPrefix that is not a string`);
  return { name, group: value.group, url: value.url, bytes: bytes as number | null, sha256: sha256 as string | null,
    unwrap: unwrap as string[], stripPrefix };
}

function checkGroup(file: string, name: string, value: unknown): ManifestGroup {
  if (!isObject(value) || !isObject(value.networks)) invalid(file, `has a group '${name}' without networks`);
  const architecture = value.architecture ?? null;
  if (architecture !== null && typeof architecture !== 'string') invalid(file, `gives the group '${name}' an architecture that is not a folder`);
  const networks: Record<string, string> = {};
  for (const [role, fileName] of Object.entries(value.networks)) {
    if (typeof fileName !== 'string') invalid(file, `gives the ${role} of '${name}' a file that is not a name`);
    networks[role] = fileName;
  }
  const modelDir = value.modelDir ?? '';
  if (typeof modelDir !== 'string' || (modelDir !== '' && path.basename(modelDir) !== modelDir)) {
    invalid(file, `gives the group '${name}' a modelDir that is not a plain folder name`);
  }
  return {
    modelDir,
    description: typeof value.description === 'string' ? value.description : name,
    default: value.default === true,
    architecture: architecture === null ? null : path.resolve(path.dirname(file), architecture as string),
    networks,
  };
}

/** Reads and checks a manifest; EARG names what is wrong with it. */
export function readManifest(file: string = defaultManifestPath()): Manifest {
  let document: unknown;
  try {
    document = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    invalid(file, `cannot be read as JSON (${(error as Error).message})`);
  }
  if (!isObject(document) || document.format !== MANIFEST_FORMAT) invalid(file, `is not a difface manifest (format '${MANIFEST_FORMAT}')`);
  if (document.version !== MANIFEST_VERSION) invalid(file, `has version ${String(document.version)}; this difface reads version ${MANIFEST_VERSION}`);
  if (!isObject(document.groups) || !Array.isArray(document.files)) invalid(file, 'has no groups and files');
  const groups: Record<string, ManifestGroup> = {};
  for (const [name, group] of Object.entries(document.groups)) groups[name] = checkGroup(file, name, group);
  const files = document.files.map((entry) => checkFile(file, entry, groups));
  const names = new Set<string>();
  for (const entry of files) {
    if (names.has(entry.name)) invalid(file, `lists ${entry.name} twice`);
    names.add(entry.name);
  }
  for (const [name, group] of Object.entries(groups)) {
    for (const fileName of Object.values(group.networks)) {
      if (!names.has(fileName)) invalid(file, `names ${fileName} in the group '${name}' but lists no such file`);
    }
  }
  return { path: path.resolve(file), groups, files };
}

/** The groups to fetch: the named ones, or the manifest's defaults. */
export function selectGroups(manifest: Manifest, only: readonly string[] | undefined): string[] {
  if (only === undefined || only.length === 0) return Object.keys(manifest.groups).filter((name) => manifest.groups[name]?.default);
  for (const name of only) {
    if (!(name in manifest.groups)) {
      throw new DifFaceError('EARG', `there is no group '${name}' to fetch; the groups are ${Object.keys(manifest.groups).join(', ')}`);
    }
  }
  return [...new Set(only)];
}

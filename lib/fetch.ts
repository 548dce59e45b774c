/**
 * `difface models fetch` and fetchModels(): the published files into a model directory, by
 * download (from the release URLs or a mirror) or by import from a folder copied by hand;
 * each checked for size and sha256, then the networks that use them made loadable (install.ts).
 * Nothing here runs at install time: fetching happens only when asked for.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { AbortError, DifFaceError, argumentError } from './errors';
import { download } from './download';
import { makeDirectory, sha256File, temporaryName } from './files';
import { installCheckpoints } from './install';
import { defaultManifestPath, readManifest, selectGroups } from './manifest';
import type { Manifest, ManifestFile, ManifestGroup } from './manifest';
import { readModelCard } from './modelcard';
import type { ModelCard } from './modelcard';
import { readArchitecture } from './architecture';
import { userModelsDir } from './models';

export interface FetchOptions {
  /** Groups to fetch (restoration, photos, inpainting); default: the manifest's default groups. */
  only?: string | string[];
  /** The model directory; default the user cache, where `difface restore` and DifFace.load() look. */
  dir?: string;
  /** A base URL that holds the files under their names, instead of the release URLs. */
  mirror?: string;
  /** Another manifest file. */
  manifest?: string;
  /** Import the files from this folder (copied by hand) instead of downloading them. */
  from?: string;
  /** Give up on a server that sends nothing for this long (default 30 s). */
  timeoutMs?: number;
  /** Reconnections after a dropped connection, each resuming where the last stopped (default 5). */
  retries?: number;
  onProgress?: (progress: FetchProgress) => void;
  signal?: AbortSignal;
}

export interface FetchProgress {
  file: string;
  /** 1-based position among the files of this fetch, and their count. */
  index: number;
  count: number;
  phase: 'check' | 'download' | 'import' | 'verify' | 'install' | 'done';
  received?: number;
  total?: number | undefined;
}

export interface FetchedFile {
  name: string;
  group: string;
  path: string;
  bytes: number;
  sha256: string;
  /** What this fetch did: nothing (already there and checked), a download, or an import. */
  how: 'present' | 'downloaded' | 'imported';
  /**
   * What the sha256 was checked against: the manifest's published sum, the sum recorded at
   * an earlier fetch, or nothing ('first': no sum is published; this one is now recorded).
   */
  checksum: 'published' | 'recorded' | 'first';
  /** Where it was downloaded or imported from. */
  source?: string;
}

export interface FetchResult {
  dir: string;
  files: FetchedFile[];
  /** The model card written or confirmed for the restoration networks, when they were fetched. */
  card?: ModelCard;
  /** Every model directory made or confirmed, by group (restoration: `dir`; inpainting: `dir/inpainting`). */
  models: Record<string, { dir: string; card: ModelCard }>;
}

/** Sums of files that have no published one, recorded at their first fetch and checked from then on. */
const RECORD_FILE = 'fetched.json';

interface Recorded {
  sha256: string;
  bytes: number;
  source: string;
  at: string;
}

function readRecords(dir: string): Record<string, Recorded> {
  try {
    const document = JSON.parse(fs.readFileSync(path.join(dir, RECORD_FILE), 'utf8')) as { files?: Record<string, Recorded> };
    return document.files ?? {};
  } catch {
    return {};
  }
}

function writeRecords(dir: string, files: Record<string, Recorded>): void {
  const target = path.join(dir, RECORD_FILE);
  const temporary = temporaryName(target);
  fs.writeFileSync(temporary, JSON.stringify({ format: 'difface-fetched', version: 1, files }, null, 2) + '\n');
  fs.renameSync(temporary, target);
}

interface Expected {
  sha256?: string | undefined;
  bytes?: number | undefined;
  kind: FetchedFile['checksum'];
}

function expectedOf(entry: ManifestFile, record: Recorded | undefined): Expected {
  if (entry.sha256 !== null) return { sha256: entry.sha256, bytes: entry.bytes ?? undefined, kind: 'published' };
  if (record !== undefined) return { sha256: record.sha256, bytes: entry.bytes ?? record.bytes, kind: 'recorded' };
  return { bytes: entry.bytes ?? undefined, kind: 'first' };
}

/** The size and sum check; resolves to the file's sha256, or rejects with ECHECKSUM naming both sums. */
async function verify(file: string, name: string, expected: Expected, from: string, signal: AbortSignal | undefined): Promise<string> {
  const bytes = fs.statSync(file).size;
  if (expected.bytes !== undefined && bytes !== expected.bytes) {
    throw new DifFaceError('ECHECKSUM', `${name} from ${from} has ${bytes} bytes, but ${expected.kind === 'published'
      ? 'the manifest says' : 'its first fetch had'} ${expected.bytes}: it is not the published file, or it is incomplete`);
  }
  const sha256 = await sha256File(file, signal);
  if (expected.sha256 !== undefined && sha256 !== expected.sha256) {
    throw new DifFaceError('ECHECKSUM', `${name} from ${from} has sha256 ${sha256}, but ${expected.kind === 'published'
      ? 'the published sum is' : 'its first fetch had'} ${expected.sha256}: it is not the published file (a damaged ` +
      'download, or a mirror serving something else)');
  }
  return sha256;
}

function checkOptions(options: FetchOptions): void {
  if (typeof options !== 'object' || options === null) throw argumentError('fetch options must be an object');
  for (const key of ['dir', 'mirror', 'manifest', 'from'] as const) {
    if (options[key] !== undefined && (typeof options[key] !== 'string' || options[key] === '')) {
      throw argumentError(`${key} must be a non-empty string`);
    }
  }
  if (options.mirror !== undefined && options.from !== undefined) throw argumentError('give either mirror or from, not both');
  if (options.mirror !== undefined && !/^https?:\/\/[^/]/.test(options.mirror)) {
    throw argumentError(`mirror must be an http(s) URL, got ${JSON.stringify(options.mirror)}`);
  }
  for (const key of ['timeoutMs', 'retries'] as const) {
    const value = options[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= (key === 'timeoutMs' ? 1 : 0))) {
      throw argumentError(`${key} must be ${key === 'timeoutMs' ? 'a positive' : 'a non-negative'} integer`);
    }
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw argumentError('onProgress must be a function');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw argumentError('signal must be an AbortSignal');
}

function sourceUrl(entry: ManifestFile, mirror: string | undefined): string {
  if (mirror === undefined) return entry.url;
  return new URL(encodeURIComponent(entry.name), mirror.endsWith('/') ? mirror : `${mirror}/`).href;
}

function unreachableAdvice(names: string[]): string {
  return 'If this machine cannot reach it, download from a mirror that holds the same files with ' +
    '`difface models fetch --mirror URL`, or copy the files here by hand and import them with ' +
    `\`difface models fetch --from DIR\` (${names.join(', ')})`;
}

class Fetcher {
  readonly records: Record<string, Recorded>;

  constructor(readonly dir: string, readonly manifest: Manifest, readonly options: FetchOptions, readonly entries: ManifestFile[]) {
    this.records = readRecords(dir);
  }

  progress(entry: ManifestFile, phase: FetchProgress['phase'], received?: number, total?: number): void {
    this.options.onProgress?.({
      file: entry.name, index: this.entries.indexOf(entry) + 1, count: this.entries.length, phase,
      ...(received !== undefined ? { received, total } : {}),
    });
  }

  /** The file already in the directory, if it passes the checks. */
  async present(entry: ManifestFile, expected: Expected): Promise<string | undefined> {
    const target = path.join(this.dir, entry.name);
    if (!fs.existsSync(target)) return undefined;
    this.progress(entry, 'check');
    try {
      return await verify(target, entry.name, expected, this.dir, this.options.signal);
    } catch (error) {
      if ((error as DifFaceError).code === 'ECHECKSUM') return undefined;  // fetched again below
      throw error;
    }
  }

  async obtain(entry: ManifestFile, partial: string): Promise<{ how: FetchedFile['how']; source: string }> {
    if (this.options.from !== undefined) {
      const source = path.resolve(this.options.from, entry.name);
      if (!fs.existsSync(source)) {
        throw new DifFaceError('EFETCH', `${entry.name} is not in ${this.options.from}; copy it there (it is published at ` +
          `${entry.url}) or fetch it over the network without --from`);
      }
      this.progress(entry, 'import');
      await fs.promises.copyFile(source, partial);
      return { how: 'imported', source };
    }
    const url = sourceUrl(entry, this.options.mirror);
    this.progress(entry, 'download', 0, entry.bytes ?? undefined);
    await download({
      url, partial, timeoutMs: this.options.timeoutMs ?? 30_000, retries: this.options.retries ?? 5,
      signal: this.options.signal, onProgress: (received, total) => this.progress(entry, 'download', received, total ?? entry.bytes ?? undefined),
      unreachableAdvice: unreachableAdvice(this.entries.map((e) => e.name)),
    });
    return { how: 'downloaded', source: url };
  }

  async one(entry: ManifestFile): Promise<FetchedFile> {
    const target = path.join(this.dir, entry.name);
    const expected = expectedOf(entry, this.records[entry.name]);
    const already = await this.present(entry, expected);
    if (already !== undefined) {
      this.progress(entry, 'done');
      return this.done(entry, target, already, 'present', expected.kind, this.dir, expected);
    }
    // A stable name, so a later run resumes what an interrupted one left.
    const partial = path.join(this.dir, `.${entry.name}.partial`);
    const { how, source } = await this.obtain(entry, partial);
    this.progress(entry, 'verify');
    let sha256: string;
    try {
      sha256 = await verify(partial, entry.name, expected, source, this.options.signal);
    } catch (error) {
      if (isAbort(error)) throw asAbort(error);
      fs.rmSync(partial, { force: true });
      if ((error as DifFaceError).code === 'ECHECKSUM') {
        throw new DifFaceError('ECHECKSUM', `${(error as Error).message}. The file was removed; fetch again, or from another mirror`);
      }
      throw error;
    }
    fs.renameSync(partial, target);
    this.progress(entry, 'done');
    return this.done(entry, target, sha256, how, expected.kind, source, expected);
  }

  done(entry: ManifestFile, file: string, sha256: string, how: FetchedFile['how'], checksum: FetchedFile['checksum'],
    source: string, expected: Expected): FetchedFile {
    const bytes = fs.statSync(file).size;
    if (expected.kind === 'first' || this.records[entry.name] === undefined) {
      this.records[entry.name] = { sha256, bytes, source, at: new Date().toISOString() };
      writeRecords(this.dir, this.records);
    }
    return { name: entry.name, group: entry.group, path: file, bytes, sha256, how, checksum, source };
  }

  /** Makes each group's networks loadable once their files are here, unless its card already says so. */
  async install(files: FetchedFile[]): Promise<FetchResult['models']> {
    const models: FetchResult['models'] = {};
    for (const [name, group] of Object.entries(this.manifest.groups)) {
      const dir = path.join(this.dir, group.modelDir);
      const card = await this.installGroup(group, files, dir);
      if (card !== undefined) models[name] = { dir, card };
    }
    return models;
  }

  async installGroup(group: ManifestGroup, files: FetchedFile[], dir: string): Promise<ModelCard | undefined> {
    if (group.architecture === null) return undefined;
    const byName = (name: string | undefined) => files.find((f) => f.name === name);
    const unet = byName(group.networks.unet);
    const backbone = byName(group.networks.backbone);
    if (unet === undefined || backbone === undefined) return undefined;
    const current = this.currentCard(dir, group.architecture, unet, backbone);
    if (current !== undefined) return current;
    const rules = (file: FetchedFile) => {
      const entry = this.manifest.files.find((f) => f.name === file.name);
      return { unwrap: entry?.unwrap ?? [], stripPrefix: entry?.stripPrefix ?? '' };
    };
    this.options.onProgress?.({ file: unet.name, index: this.entries.length, count: this.entries.length, phase: 'install' });
    return installCheckpoints({
      unet: { path: unet.path, rules: rules(unet), sha256: unet.sha256 },
      backbone: { path: backbone.path, rules: rules(backbone), sha256: backbone.sha256 },
      architecture: group.architecture,
      out: dir,
    });
  }

  currentCard(dir: string, architectureDir: string, unet: FetchedFile, backbone: FetchedFile): ModelCard | undefined {
    try {
      const card = readModelCard(dir);
      const architecture = readArchitecture(architectureDir, ['unet', 'backbone']);
      const same = card.version === 2 && card.unet.file === unet.name && card.unet.sha256 === unet.sha256 &&
        card.backbone.file === backbone.name && card.backbone.sha256 === backbone.sha256 &&
        card.unet.architecture?.sha256 === architecture.networks.unet?.sha256 &&
        card.backbone.architecture?.sha256 === architecture.networks.backbone?.sha256;
      return same ? card : undefined;
    } catch {
      return undefined;
    }
  }
}

function isAbort(error: unknown): boolean {
  return error instanceof AbortError || (error as { name?: string }).name === 'AbortError';
}

function asAbort(error: unknown): AbortError {
  return error instanceof AbortError ? error : new AbortError('the fetch was aborted', { cause: error });
}

/** Fetches the published files into a model directory; resolves to what it did. */
export async function fetchModels(options: FetchOptions = {}): Promise<FetchResult> {
  try {
    return await fetchChecked(options);
  } catch (error) {
    throw isAbort(error) ? asAbort(error) : error;
  }
}

async function fetchChecked(options: FetchOptions): Promise<FetchResult> {
  checkOptions(options);
  const manifest = readManifest(options.manifest ?? defaultManifestPath());
  const only = options.only === undefined ? undefined : Array.isArray(options.only) ? options.only : options.only.split(',');
  const groups = selectGroups(manifest, only?.map((group) => group.trim()).filter((group) => group !== ''));
  const entries = manifest.files.filter((entry) => groups.includes(entry.group));
  const dir = path.resolve(options.dir ?? userModelsDir());
  await makeDirectory(dir);
  const fetcher = new Fetcher(dir, manifest, options, entries);
  const files: FetchedFile[] = [];
  for (const entry of entries) files.push(await fetcher.one(entry));
  const models = await fetcher.install(files);
  const card = models.restoration?.card;
  return { dir, files, models, ...(card !== undefined ? { card } : {}) };
}

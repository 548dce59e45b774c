/**
 * Compiled UNets: AOTInductor packages (.pt2) that `difface compile` makes with the package's
 * Python (models/aot_compile.py) and the engine runs instead of the TorchScript export, for
 * the exact input shapes they were compiled for.
 *
 * The cache sits next to the model (MODEL_DIR/compiled, or DIFFACE_COMPILE_CACHE). Each
 * package has a JSON record beside it whose key says what the generated code depends on: the
 * torch version, the CPU's vector instructions or the GPU's architecture, the dtype, and the
 * UNet file it holds the weights of. A package whose key does not match this machine and model
 * is stale: the engine runs TorchScript for that shape and says why.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFaceError, argumentError } from './errors';
import { ModelCard } from './modelcard';
import { NativeRuntime, packageRoot } from './native';
import { findPython, reportedFailure } from './python';
import * as is from './validate';

/** The record format this version writes and reads. */
export const PACKAGE_FORMAT = 1;

/**
 * When the engine runs compiled packages:
 * - 'auto' (default): on CUDA when the cache has them; on the CPU never, because the
 *   TorchScript engine is faster there (bench/results/README.md has the figures);
 * - 'on': whenever the cache has them, on any device;
 * - 'off': never.
 */
export type CompiledMode = 'auto' | 'on' | 'off';

/** What a package's generated code depends on. */
export interface PackageKey {
  format: number;
  /** torch's version without the local part ('2.13.0'). */
  torch: string;
  /** 'cpu-avx512', 'cpu-avx2', 'cuda-sm90', ... */
  device: string;
  dtype: string;
  /** The sha256 of the UNet file named in the model card: the package holds its weights. */
  unetSha256: string;
}

/** A package's record, as models/aot_compile.py writes it beside the package. */
export interface PackageRecord extends PackageKey {
  batch: number;
  height: number;
  width: number;
  file: string;
  compileSeconds: number;
  maxDifferenceFromEager: number;
  compiledAt: string;
}

export interface NativePackage {
  path: string;
  batch: number;
  height: number;
  width: number;
}

/** The packages an engine may use, and one line for each that it may not. */
export interface CacheLookup {
  packages: NativePackage[];
  notes: string[];
}

export function compiledMode(value: unknown, what = 'compiled'): CompiledMode {
  if (value === 'auto' || value === 'on' || value === 'off') return value;
  throw argumentError(`${what} must be 'auto', 'on' or 'off', got ${JSON.stringify(value)}`);
}

/** The cache folder of a model directory. */
export function cacheDir(modelDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env.DIFFACE_COMPILE_CACHE;
  return chosen !== undefined && chosen !== '' ? path.resolve(chosen) : path.join(modelDir, 'compiled');
}

function gpuIndex(device: string): number {
  return device === 'cuda' ? 0 : Number(device.slice('cuda:'.length));
}

/** The device part of the key, for this machine: 'cpu-avx512' or 'cuda-sm90'. */
export function deviceTag(device: string, runtime: Pick<NativeRuntime, 'cpuCapability' | 'gpus'>): string {
  if (device === 'cpu') return `cpu-${runtime.cpuCapability.toLowerCase()}`;
  const gpu = runtime.gpus[gpuIndex(device)];
  if (gpu === undefined) throw new DifFaceError('EDEVICE', `there is no GPU ${device} to compile for`);
  return `cuda-sm${gpu.capability.replace('.', '')}`;
}

/** torch's version without the local part: '2.13.0+cpu' -> '2.13.0'. */
export function baseVersion(version: string): string {
  return version.split('+')[0] ?? version;
}

export function expectedKey(card: ModelCard, device: string, dtype: string,
  runtime: Pick<NativeRuntime, 'torch' | 'cpuCapability' | 'gpus'>): PackageKey {
  return {
    format: PACKAGE_FORMAT,
    torch: baseVersion(runtime.torch),
    device: deviceTag(device, runtime),
    dtype,
    unetSha256: card.unet.sha256,
  };
}

/** Why a record does not fit the key, in words; null when it fits. */
export function staleness(record: PackageKey, key: PackageKey): string | null {
  if (record.format !== key.format) return `it is in record format ${String(record.format)}, this difface reads ${String(key.format)}`;
  if (record.torch !== key.torch) return `it was compiled with torch ${record.torch}, the engine runs libtorch ${key.torch}`;
  if (record.unetSha256 !== key.unetSha256) return 'it holds the weights of another UNet file';
  return null;
}

function readRecord(file: string): PackageRecord | null {
  try {
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as PackageRecord;
    const numbers = [record.batch, record.height, record.width, record.format];
    if (numbers.some((n) => !Number.isInteger(n)) || typeof record.file !== 'string' || typeof record.device !== 'string') {
      return null;
    }
    return record;
  } catch {
    return null;
  }
}

/**
 * The cache's packages for this device and dtype. Packages for other devices or dtypes are
 * someone else's and pass silently; a stale or missing one gets a note.
 */
export function findPackages(dir: string, key: PackageKey): CacheLookup {
  const lookup: CacheLookup = { packages: [], notes: [] };
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((name) => name.startsWith('unet-') && name.endsWith('.json')).sort();
  } catch {
    return lookup;
  }
  const recompile = "; run 'difface compile' again to make it for this machine and model";
  for (const name of names) {
    const record = readRecord(path.join(dir, name));
    if (record === null) {
      lookup.notes.push(`the compiled package record ${path.join(dir, name)} is not readable, so it is not used${recompile}`);
      continue;
    }
    if (record.device !== key.device || record.dtype !== key.dtype) continue;
    const packagePath = path.join(dir, path.basename(record.file));
    const why = staleness(record, key);
    if (why !== null) {
      lookup.notes.push(`the compiled package ${packagePath} is stale (${why}), so the TorchScript export runs batch ` +
        `${String(record.batch)}${recompile}`);
    } else if (!fs.existsSync(packagePath)) {
      lookup.notes.push(`the compiled package ${packagePath} named in ${name} is missing, so the TorchScript export runs ` +
        `batch ${String(record.batch)}${recompile}`);
    } else {
      lookup.packages.push({ path: packagePath, batch: record.batch, height: record.height, width: record.width });
    }
  }
  return lookup;
}

/** Whether an engine in this mode on this device uses compiled packages at all. */
export function usesCompiled(mode: CompiledMode, device: string): boolean {
  if (mode === 'off') return false;
  return mode === 'on' || device !== 'cpu';
}

export interface CompileOptions {
  /** Where the networks will run. Default 'cpu'. */
  device?: string;
  /** float32, or float16/bfloat16 on CUDA. Default 'float32'. */
  dtype?: is.DType;
  /** Batch sizes to compile, one package each. Default [1]. */
  batches?: readonly number[];
  /** Image size [height, width]; default the UNet's image_size. */
  size?: readonly [number, number];
  /** CPU threads for the compile and its check. Default: PyTorch's. */
  threads?: number;
  /** The cache folder; default cacheDir(modelDir). */
  out?: string;
  /** Called as each package starts and ends. */
  onProgress?: (event: CompileProgress) => void;
}

export type CompileProgress =
  | { event: 'compiling'; name: string; batch: number }
  | { event: 'compiled'; name: string; batch: number; seconds: number; maxDifference: number };

export interface CompileResult {
  dir: string;
  packages: PackageRecord[];
  /** Wall time of the whole run, Python's start included. */
  seconds: number;
}

/** Compiles the UNet of a model directory into the cache, one package per batch size. */
export async function compileUNet(modelDir: string, options: CompileOptions = {}): Promise<CompileResult> {
  const device = is.device(options.device ?? 'cpu');
  const dtype = is.dtype(options.dtype ?? 'float32');
  if (device === 'cpu' && dtype !== 'float32') {
    throw argumentError(`dtype '${dtype}' is only supported on CUDA devices; compile with 'float32' for the CPU`);
  }
  const batches = is.compileBatches(options.batches ?? [1]);
  const dir = path.resolve(modelDir);
  const out = options.out !== undefined ? path.resolve(options.out) : cacheDir(dir);
  const args = [path.join(packageRoot, 'models', 'aot_compile.py'), dir, '--out', out, '--device', device,
    '--dtype', dtype, '--batch', batches.join(',')];
  if (options.size !== undefined) {
    const [height, width] = is.compileSize(options.size);
    args.push('--size', `${String(height)}x${String(width)}`);
  }
  if (options.threads !== undefined) args.push('--threads', String(is.threads(options.threads)));
  const started = performance.now();
  const packages = await runCompiler(args, options.onProgress);
  return { dir: out, packages, seconds: (performance.now() - started) / 1000 };
}

function runCompiler(args: string[], onProgress: CompileOptions['onProgress']): Promise<PackageRecord[]> {
  const python = findPython();
  return new Promise((resolve, reject) => {
    const child = spawn(python.executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    let stderr = '';
    let done: PackageRecord[] | null = null;
    const onLine = (line: string) => {
      if (line.trim() === '') return;
      let event: { event?: string; packages?: PackageRecord[] } & Record<string, unknown>;
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        return;
      }
      if (event.event === 'done') done = event.packages ?? [];
      else if (event.event === 'compiling' || event.event === 'compiled') onProgress?.(event as unknown as CompileProgress);
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      lines.forEach(onLine);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', (error) => reject(new DifFaceError('EPYTHON', `cannot run ${python.executable}: ${error.message}`)));
    child.on('close', (code) => {
      onLine(pending);
      const failure = reportedFailure(stderr, 'ECOMPILE', 'the compile');
      if (failure !== null) {
        reject(failure);
      } else if (code !== 0 || done === null) {
        const tail = stderr.trim().split('\n').slice(-6).join('\n');
        reject(new DifFaceError('ECOMPILE', `the UNet could not be compiled (exit code ${String(code)}): ${tail}; ` +
          "the engine keeps running the TorchScript export. 'difface doctor' shows the Python and torch in use"));
      } else {
        resolve(done);
      }
    });
  });
}

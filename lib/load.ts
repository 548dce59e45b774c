/**
 * Loading an engine: its options, checked; the DIFFACE_* tuning variables, read here on the
 * main thread (the engine's worker never reads the environment); and the native load.
 */
import * as os from 'node:os';
import * as path from 'node:path';

import { CompiledMode, NativePackage, cacheDir, compiledMode, expectedKey, findPackages, usesCompiled } from './compiled';
import { DifFaceError, argumentError, fromNative } from './errors';
import { ModelCard } from './modelcard';
import { NativeEngine, NativeEngineOptions, native } from './native';
import * as is from './validate';

export interface LoadOptions {
  /** Where the networks run. Default 'cpu'. */
  device?: is.Device;
  /**
   * Precision of the networks. 'float16' and 'bfloat16' (CUDA only) follow the published
   * fp16 mode: the UNet's torso convolutions run in that type, GroupNorm in float32; the
   * sampler itself always works in float32. Default 'float32'.
   */
  dtype?: is.DType;
  /** CPU threads for the networks. Default: every core. Process-wide in libtorch. */
  threads?: number;
  /**
   * Most faces that go through the networks together: concurrent calls with the same input
   * size and start step share a batch up to this. Each keeps its own seed and eta, and gets
   * what it would get alone. 1 turns batching off. Default 8.
   */
  maxBatch?: number;
  /** Most calls that may wait; past it, calls reject at once with EQUEUEFULL. Default 1024. */
  maxQueue?: number;
  /**
   * Whether the UNet runs the packages `difface compile` left in the model's cache, for the
   * shapes they were compiled for: 'auto' on CUDA only, 'on' on any device, 'off' never.
   * Default: DIFFACE_COMPILED, else 'auto'. A stale or broken package falls back to the
   * TorchScript export with a warning (see DifFace.compiled()).
   */
  compiled?: CompiledMode;
}

export function checkLoadOptions(options: LoadOptions): Required<LoadOptions> {
  if (typeof options !== 'object' || options === null) throw argumentError('load options must be an object');
  const device = is.device(options.device ?? 'cpu');
  const dtype = is.dtype(options.dtype ?? 'float32');
  if (dtype !== 'float32' && device === 'cpu') {
    throw argumentError(`dtype '${dtype}' is only supported on CUDA devices; use 'float32' on the CPU`);
  }
  return {
    device,
    dtype,
    threads: is.threads(options.threads ?? os.availableParallelism()),
    maxBatch: is.maxBatch(options.maxBatch ?? 8),
    maxQueue: is.maxQueue(options.maxQueue ?? 1024),
    compiled: options.compiled !== undefined ? compiledMode(options.compiled)
      : compiledMode(process.env.DIFFACE_COMPILED || 'auto', 'DIFFACE_COMPILED'),
  };
}

type Tuning = Pick<NativeEngineOptions, 'cudaGraphs' | 'cudaChannelsLast' | 'jitOptimize' | 'hostCacheMB'>;

/**
 * The engine's tuning from the environment:
 *   DIFFACE_CUDA_GRAPHS=0            plain UNet calls instead of replayed CUDA graphs
 *   DIFFACE_CUDA_LAYOUT=channels_last  the UNet's convolutions channels-last on CUDA
 *   DIFFACE_JIT_OPTIMIZE=1           TorchScript's optimizing executor (changes CPU results)
 *   DIFFACE_HOST_CACHE_MB=N          freed host memory kept for reuse (default 2048; 0: none)
 */
export function tuningFromEnvironment(env: NodeJS.ProcessEnv = process.env): Tuning {
  const cache = env.DIFFACE_HOST_CACHE_MB;
  let hostCacheMB = 2048;
  if (cache !== undefined && cache !== '') {
    hostCacheMB = Number(cache);
    if (!Number.isInteger(hostCacheMB) || hostCacheMB < 0) {
      throw argumentError(`DIFFACE_HOST_CACHE_MB must be a whole number of megabytes, got ${JSON.stringify(cache)}`);
    }
  }
  return {
    cudaGraphs: env.DIFFACE_CUDA_GRAPHS !== '0',
    cudaChannelsLast: env.DIFFACE_CUDA_LAYOUT === 'channels_last',
    jitOptimize: env.DIFFACE_JIT_OPTIMIZE === '1',
    hostCacheMB,
  };
}

/** The engine's network files: TorchScript exports, or architectures and the checkpoints that fill them. */
function networkFiles(dir: string, card: ModelCard): Pick<NativeEngineOptions, 'unet' | 'backbone' | 'unetWeights' | 'backboneWeights'> {
  const files = (entry: ModelCard['unet']) => entry.architecture === undefined
    ? { file: path.join(dir, entry.file) }
    : { file: path.join(dir, entry.architecture.file), weights: { checkpoint: path.join(dir, entry.file), ...entry.checkpoint } };
  const unet = files(card.unet);
  const backbone = files(card.backbone);
  return { unet: unet.file, backbone: backbone.file, unetWeights: unet.weights, backboneWeights: backbone.weights };
}

/** What an engine runs for its UNet: the batch sizes compiled packages serve, and why others do not. */
export interface CompiledState {
  mode: CompiledMode;
  batches: number[];
  notes: string[];
}

/** The cache's packages for this engine, when its mode uses them. */
function compiledPackages(dir: string, card: ModelCard, options: Required<LoadOptions>): { packages: NativePackage[]; notes: string[] } {
  if (!usesCompiled(options.compiled, options.device)) return { packages: [], notes: [] };
  const runtime = native().runtime();
  if (options.device !== 'cpu' && runtime.gpus.length === 0) return { packages: [], notes: [] };
  const cache = cacheDir(dir);
  const key = expectedKey(card, options.device, options.dtype, runtime);
  const lookup = findPackages(cache, key);
  if (options.compiled === 'on' && lookup.packages.length === 0 && lookup.notes.length === 0) {
    // Asked for by name: say why nothing compiled runs, rather than run TorchScript silently.
    lookup.notes.push(`compiled: 'on' found no compiled UNet for ${key.device} in ${key.dtype} in ${cache}, so the ` +
      `TorchScript export runs; make one with 'difface compile --models ${dir} --device ${options.device} --dtype ${options.dtype}'`);
  }
  return { packages: lookup.packages, notes: lookup.notes };
}

/**
 * The engine's compiled state after loading; each note is also a process warning
 * (code DIFFACE_COMPILED), so a stale cache is seen without asking.
 */
export function compiledState(engine: NativeEngine, mode: CompiledMode, lookupNotes: string[]): CompiledState {
  const loaded = engine.compiled();
  const state = { mode, batches: loaded.batches, notes: [...lookupNotes, ...loaded.notes] };
  for (const note of state.notes) process.emitWarning(note, { code: 'DIFFACE_COMPILED' });
  return state;
}

/** Loads a checked model directory's networks onto a device. */
export async function loadNative(dir: string, card: ModelCard, options: Required<LoadOptions>): Promise<{ engine: NativeEngine; compiled: CompiledState }> {
  try {
    const compiled = compiledPackages(dir, card, options);
    const engine = await native().loadEngine({
      ...networkFiles(dir, card),
      device: options.device,
      dtype: options.dtype,
      threads: options.threads,
      schedule: card.schedule,
      backboneChannels: card.task === 'inpainting' ? 4 : 3,
      unetPackages: compiled.packages,
      ...tuningFromEnvironment(),
    });
    return { engine, compiled: compiledState(engine, options.compiled, compiled.notes) };
  } catch (error) {
    const failure = fromNative(error);
    // Options were checked before, so a refusal here is about the directory's content.
    if (failure.code === 'EMODELDIR' || failure.code === 'EARG') {
      throw new DifFaceError('EMODELDIR', `model directory '${dir}': ${failure.message}`, { cause: error });
    }
    throw failure;
  }
}

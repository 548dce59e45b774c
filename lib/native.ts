/**
 * Loads the native addon (prebuilt or built here) and describes what it exports. Nothing
 * else in lib/ touches the addon's loading.
 */
import * as path from 'node:path';

import { DifFaceError } from './errors';

export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly device: string;
  readonly disposed: boolean;
  toFloat32(): Promise<Float32Array>;
  dispose(): void;
}

export interface NativeGenerator {
  readonly seed: bigint;
  randn(shape: readonly number[]): Promise<NativeTensor>;
}

export interface NativeCancelToken {
  cancel(): void;
  readonly cancelled: boolean;
}

export type StepCallback = (done: number, total: number, timestep: number) => void;

export interface NativeEngine {
  readonly device: string;
  readonly dtype: string;
  readonly timesteps: number[];
  readonly alphaBar: number[];
  readonly pending: number;
  generator(seed: number | bigint): NativeGenerator;
  unet(x: NativeTensor, t: readonly number[]): Promise<NativeTensor>;
  estimate(lq: NativeTensor): Promise<NativeTensor>;
  transition(estimate: NativeTensor, startStep: number, generator: NativeGenerator): Promise<NativeTensor>;
  step(x: NativeTensor, index: number, eta: number, generator: NativeGenerator | undefined, noise: NativeTensor | undefined):
    Promise<{ previous: NativeTensor; predictedX0: NativeTensor }>;
  reverse(xN: NativeTensor, startStep: number, eta: number, generator: NativeGenerator,
    onStep: StepCallback | undefined, cancel: NativeCancelToken | undefined): Promise<NativeTensor>;
  restoreBatch(requests: NativeRequest[], height: number, width: number, startStep: number,
    onStep: (done: number, total: number, timestep: number, request: number) => void): Promise<NativeRequestResult[]>;
  resize(x: NativeTensor, height: number, width: number): Promise<NativeTensor>;
  warpAffine(image: NativeTensor, outToImage: readonly number[], height: number, width: number, border: readonly number[]): Promise<NativeTensor>;
  pasteFaces(canvas: NativeTensor, faces: NativeTensor[], canvasToFace: (readonly number[])[], scale: number): Promise<NativeTensor>;
  loadPhotoNetwork(role: string, architecture: string, weights: { checkpoint: string; unwrap: string[]; stripPrefix: string }): Promise<void>;
  detectFaces(image: NativeTensor): Promise<NativeTensor>;
  decodeDetections(loc: NativeTensor, conf: NativeTensor, landmarks: NativeTensor, height: number, width: number, scale: number): Promise<NativeTensor>;
  upscaleBackground(image: NativeTensor, tile: number, tilePad: number, onTile: StepCallback | undefined,
    cancel: NativeCancelToken | undefined): Promise<NativeTensor>;
  cudaGraphs(): { allowed: boolean; captured: number; failed: boolean };
  memory(): { currentBytes: number; peakBytes: number };
  resetPeakMemory(): void;
  dispose(): void;
}

/** One caller's faces for a shared batch, each [b, 3, h, w] of any size: taken when it is made. */
export interface NativeRequestSpec {
  faces: NativeTensor[];
  seed: number | bigint;
  eta: number;
  estimates: boolean;
  cancel: NativeCancelToken;
}

/** An opaque request; it runs once. */
export type NativeRequest = object & { readonly __nativeRequest?: never };

export interface NativeRequestResult {
  aborted: boolean;
  /** One tensor per face of the request, at its size; empty when aborted. */
  restored: NativeTensor[];
  estimates: NativeTensor[];
}

/** A published checkpoint that fills a weight-less architecture, and where its weights are in it. */
export interface NativeWeights {
  checkpoint: string;
  unwrap?: string[];
  stripPrefix?: string;
}

export interface NativeEngineOptions {
  unet: string;
  backbone: string;
  unetWeights?: NativeWeights | undefined;
  backboneWeights?: NativeWeights | undefined;
  device: string;
  dtype: string;
  threads: number;
  schedule: { steps: number; noiseSchedule: string; respacing: string; rescaleTimesteps: boolean };
  cudaGraphs: boolean;
  cudaChannelsLast: boolean;
  jitOptimize: boolean;
  hostCacheMB: number;
}

export interface NativeRuntime {
  torch: string;
  cuda: boolean;
  cudaDevices: number;
  threads: number;
  cxx11Abi: boolean;
  cudaGraphs: boolean;
}

export interface NativeAddon {
  NativeTensor: { fromFloat32(data: Float32Array, shape: readonly number[]): NativeTensor };
  NativeCancelToken: new () => NativeCancelToken;
  NativeRequest: new (spec: NativeRequestSpec) => NativeRequest;
  loadEngine(options: NativeEngineOptions): Promise<NativeEngine>;
  liveEngines(): number;
  runtime(): NativeRuntime;
  tensorStats(): { count: number; bytes: number };
}

export const packageRoot = path.resolve(__dirname, '..');

let addon: NativeAddon | undefined;
let addonPath: string | undefined;

/** The addon, loaded on first use. Throws ENATIVE with the cause and a fix when it cannot load. */
export function native(): NativeAddon {
  if (addon === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const load = require('node-gyp-build') as { (dir: string): NativeAddon; resolve(dir: string): string };
      addonPath = load.resolve(packageRoot);
      addon = load(packageRoot);
    } catch (error) {
      throw new DifFaceError('ENATIVE', explainLoadFailure(error), { cause: error });
    }
  }
  return addon;
}

/** Where the addon was loaded from, once it is loaded. */
export function nativePath(): string | undefined {
  return addonPath;
}

const REBUILD = 'npm rebuild difface --build-from-source';

/**
 * What a failed load means and the command that fixes it: one message, like sharp's,
 * instead of a raw dlopen error. Exported for the tests.
 */
export function explainLoadFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/No native build was found/.test(message)) {
    return `difface has no binary for ${process.platform}-${process.arch} here; build one with \`${REBUILD}\` ` +
      '(needs cmake, a C++17 compiler and libtorch: apt-get install cmake g++ libtorch-dev)';
  }
  const missing = /(lib[\w.+-]+\.so[\w.]*): cannot open shared object file/.exec(message);
  if (missing !== null) {
    const library = missing[1] ?? '';
    const version = /^libtorch\w*\.so\.(\d+\.\d+)/.exec(library)?.[1] ?? /^libc10\.so\.(\d+\.\d+)/.exec(library)?.[1];
    if (/^lib(torch|c10)(_cpu|_global_deps)?\.so/.test(library)) {
      return `the native addon needs libtorch${version ? ` ${version}` : ''}, and ${library} is not installed: ` +
        `apt-get install ${version ? `libtorch${version}` : 'libtorch-dev'} (Debian), or rebuild difface against ` +
        `the libtorch you have: \`${REBUILD}\` (Torch_DIR chooses another libtorch)`;
    }
    if (/^lib(cuda|cudart|cublas|cudnn|nv|c10_cuda|torch_cuda)/.test(library)) {
      return `the native addon was built against a CUDA libtorch, and ${library} is not found: add that PyTorch's library ` +
        'folder to LD_LIBRARY_PATH (python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), \'lib\'))"), ' +
        `or rebuild for the CPU with \`${REBUILD}\``;
    }
    return `the native addon cannot load ${library}, which it needs: install it, or rebuild with \`${REBUILD}\``;
  }
  const symbol = /undefined symbol: (\S+)/.exec(message);
  if (symbol !== null) {
    const abi = ' (another version, or another C++ ABI: _GLIBCXX_USE_CXX11_ABI)';
    return `the native addon was built against another libtorch than the one found now${abi}; rebuild it against ` +
      `this one: \`${REBUILD}\` (missing symbol ${symbol[1]})`;
  }
  const broken = /(lib(?:torch|c10)[\w.+-]*\.so[\w.]*): (file too short|invalid ELF header)/.exec(message);
  if (broken !== null) {
    return `${broken[1]} is damaged (${broken[2]}); reinstall libtorch: apt-get install --reinstall libtorch-dev`;
  }
  return `the difface native addon failed to load: ${message}`;
}

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
  readonly pending: number;
  generator(seed: number | bigint): NativeGenerator;
  unet(x: NativeTensor, t: readonly number[]): Promise<NativeTensor>;
  estimate(lq: NativeTensor): Promise<NativeTensor>;
  transition(estimate: NativeTensor, startStep: number, generator: NativeGenerator): Promise<NativeTensor>;
  step(x: NativeTensor, index: number, eta: number, generator: NativeGenerator): Promise<NativeTensor>;
  reverse(xN: NativeTensor, startStep: number, eta: number, generator: NativeGenerator,
    onStep: StepCallback | undefined, cancel: NativeCancelToken | undefined): Promise<NativeTensor>;
  restore(lq: NativeTensor, startStep: number, eta: number, seed: number | bigint,
    onStep: StepCallback | undefined, cancel: NativeCancelToken | undefined):
    Promise<{ restored: NativeTensor; estimate: NativeTensor }>;
  restoreFaces(faces: NativeTensor[], side: number, startStep: number, eta: number, seed: number | bigint,
    onStep: StepCallback | undefined, cancel: NativeCancelToken | undefined, keepEstimates: boolean):
    Promise<{ restored: NativeTensor[]; estimates: NativeTensor[] }>;
  resize(x: NativeTensor, height: number, width: number): Promise<NativeTensor>;
  memory(): { currentBytes: number; peakBytes: number };
  resetPeakMemory(): void;
  dispose(): void;
}

export interface NativeEngineOptions {
  unet: string;
  backbone: string;
  device: string;
  dtype: string;
  threads: number;
  schedule: { steps: number; noiseSchedule: string; respacing: string; rescaleTimesteps: boolean };
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
  loadEngine(options: NativeEngineOptions): Promise<NativeEngine>;
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

function explainLoadFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/No native build was found/.test(message)) {
    return 'the difface native addon is not built for this platform; build it with `npm run build` ' +
      '(needs cmake, a C++ compiler and libtorch: `apt-get install libtorch-dev`)';
  }
  const missing = /(lib[\w.+-]+\.so[\w.]*): cannot open shared object file/.exec(message);
  if (missing !== null) {
    const library = missing[1] ?? '';
    if (/^lib(torch|c10)/.test(library)) {
      return `the difface addon needs libtorch, but ${library} is not installed or not on the library path; ` +
        'install it with `apt-get install libtorch-dev` (or point LD_LIBRARY_PATH at the libtorch it was built with)';
    }
    if (/^lib(cuda|cudart|cublas|cudnn|nv)/.test(library)) {
      return `the difface addon was built against a CUDA libtorch, but ${library} was not found; ` +
        'add the CUDA libraries of that PyTorch install to LD_LIBRARY_PATH, or rebuild for the CPU with `npm run build`';
    }
    return `the difface addon cannot load ${library}; install it, or rebuild with \`npm run build\``;
  }
  if (/undefined symbol/.test(message)) {
    return 'the difface addon was built against another libtorch than the one found now (undefined symbol: ' +
      'another version or C++ ABI); rebuild it with `npm run build` against the libtorch you have: ' + message;
  }
  return `the difface native addon failed to load: ${message}`;
}

/**
 * Loads the native addon (prebuilt or built here) and describes what it exports. Nothing
 * else in lib/ touches the addon's loading.
 */
import * as path from 'node:path';

import { BinaryChoice, REBUILD, chooseBinary } from './binaries';
import { DifFaceError } from './errors';
import { nvidiaWheelFolders } from './libtorch';
import { preloadFor } from './preload';

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
  step(x: NativeTensor, index: number, eta: number, generator: NativeGenerator | undefined, noise: NativeTensor | undefined,
    known?: { y0: NativeTensor; holes: NativeTensor; gamma: number }):
    Promise<{ previous: NativeTensor; predictedX0: NativeTensor }>;
  reverse(xN: NativeTensor, startStep: number, eta: number, generator: NativeGenerator,
    onStep: StepCallback | undefined, cancel: NativeCancelToken | undefined): Promise<NativeTensor>;
  restoreBatch(requests: NativeRequest[], height: number, width: number, startStep: number,
    onStep: (done: number, total: number, timestep: number, request: number) => void): Promise<NativeRequestResult[]>;
  resize(x: NativeTensor, height: number, width: number): Promise<NativeTensor>;
  warpAffine(image: NativeTensor, outToImage: readonly number[], height: number, width: number, border: readonly number[]): Promise<NativeTensor>;
  pasteFaces(canvas: NativeTensor, faces: NativeTensor[], canvasToFace: (readonly number[])[], scale: number,
    parseMasks?: NativeTensor[]): Promise<NativeTensor>;
  parseFaces(faces: NativeTensor): Promise<NativeTensor>;
  faceMasks(scores: NativeTensor): Promise<NativeTensor>;
  loadPhotoNetwork(role: string, architecture: string, weights: { checkpoint: string; unwrap: string[]; stripPrefix: string }): Promise<void>;
  detectFaces(image: NativeTensor): Promise<NativeTensor>;
  decodeDetections(loc: NativeTensor, conf: NativeTensor, landmarks: NativeTensor, height: number, width: number, scale: number): Promise<NativeTensor>;
  upscaleBackground(image: NativeTensor, tile: number, tilePad: number, onTile: StepCallback | undefined,
    cancel: NativeCancelToken | undefined): Promise<NativeTensor>;
  cudaGraphs(): { allowed: boolean; captured: number; failed: boolean };
  compiled(): { batches: number[]; notes: string[] };
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
  /** Inpainting: one mask per face ([b, 1, h, w], nonzero where missing), and the regularizer's weight. */
  masks?: NativeTensor[];
  gamma?: number;
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
  /** 3 for the restoration backbone, 4 (face and hole mask) for the inpainting estimator. */
  backboneChannels?: number;
  /** AOTInductor packages of the UNet whose cache key matched, each for one input shape. */
  unetPackages?: { path: string; batch: number; height: number; width: number }[];
}

export interface NativeRuntime {
  torch: string;
  cuda: boolean;
  cudaDevices: number;
  threads: number;
  cxx11Abi: boolean;
  cudaGraphs: boolean;
  /** cuDNN's version number (92400 for 9.24.0), 0 without cuDNN. */
  cudnn: number;
  /** Why CUDA cannot be used here; empty when it can. */
  cudaReason: string;
  /** Compute capability per GPU ('9.0'). */
  gpus: { name: string; memoryBytes: number; capability: string }[];
  /** Whether this build can load AOTInductor packages (libtorch 2.6 and later). */
  compiledPackages: boolean;
  /** ATen's vector instruction set here: 'AVX512', 'AVX2', 'DEFAULT'. */
  cpuCapability: string;
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
let loaded: BinaryChoice | undefined;

/**
 * The addon, loaded on first use: the binary built here or the prebuilt variant for the
 * user's libtorch (lib/binaries.ts), after that libtorch's libraries (lib/preload.ts).
 * Throws ENATIVE with the cause and a fix when it cannot load.
 */
export function native(): NativeAddon {
  if (addon === undefined) {
    const choice = chooseBinary(packageRoot);
    try {
      if (choice.libtorch !== undefined) preloadFor(choice.file, choice.libtorch.libDir, nvidiaWheelFolders(choice.libtorch));
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      addon = require(choice.file) as NativeAddon;
    } catch (error) {
      throw new DifFaceError('ENATIVE', explainLoadFailure(error, choice), { cause: error });
    }
    loaded = choice;
  }
  return addon;
}

/** Which binary was loaded, and against which libtorch, once it is loaded. */
export function loadedBinary(): BinaryChoice | undefined {
  return loaded;
}

/**
 * What a failed load means and the command that fixes it: one message, like sharp's,
 * instead of a raw dlopen error. Exported for the tests.
 */
export function explainLoadFailure(error: unknown, choice?: BinaryChoice): string {
  const message = error instanceof Error ? error.message : String(error);
  const where = choice?.libtorch ? ` (libtorch ${choice.libtorch.version ?? ''} at ${choice.libtorch.libDir}, ${choice.libtorch.from})` : '';
  const reinstall = choice?.variant ? `reinstall that torch: \`${choice.variant.install}\`` : `rebuild difface: \`${REBUILD}\``;
  const missing = /(lib[\w.+-]+\.so[\w.]*): cannot open shared object file/.exec(message);
  if (missing !== null) {
    const library = missing[1] ?? '';
    if (/^lib(cuda|cudart|cublas|cudnn|cufft|curand|cusolver|cusparse|nccl|nv|c10_cuda|torch_cuda)/.test(library)) {
      return `the native addon runs on a CUDA libtorch${where}, and ${library}, one of the NVIDIA libraries it needs, is ` +
        `not installed beside it: install torch with its dependencies, ${reinstall}; or use a CPU torch`;
    }
    return `the native addon cannot load ${library}, which it needs${where}: ${reinstall}`;
  }
  const symbol = /undefined symbol: (\S+)/.exec(message);
  if (symbol !== null) {
    return `the native addon was built against another libtorch than the one it loaded${where} (another version, or ` +
      `another C++ ABI); rebuild it against this one: \`${REBUILD}\` (missing symbol ${symbol[1]})`;
  }
  const broken = /(lib[\w.+-]*\.so[\w.]*): (file too short|invalid ELF header)/.exec(message);
  if (broken !== null) {
    return `${broken[1]} is damaged (${broken[2]})${where}: ${reinstall}`;
  }
  return `the difface native addon failed to load${where}: ${message}`;
}

/** What this difface runs on: the package, its libtorch, CUDA and the GPUs, and which addon binary. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { loadedBinary, native, packageRoot } from './native';

export interface GpuInfo {
  name: string;
  memoryBytes: number;
  /** Compute capability ('9.0' for an H100 or H200). */
  capability: string;
}

export interface Versions {
  difface: string;
  node: string;
  /** The libtorch the addon runs on, as it reports itself ('2.13.0'). */
  torch: string;
  /** Where that libtorch is, its full version ('2.13.0+cpu') and how it was found. */
  libtorch: { path: string; version: string | null; from: string } | null;
  cuda: boolean;
  /** Why CUDA cannot be used, when it cannot. */
  cudaReason: string | null;
  cudaDevices: number;
  gpus: GpuInfo[];
  /** The cuDNN libtorch was built with ('9.24.0'), null without. */
  cudnn: string | null;
  /** Whether the addon was built with CUDA graphs (against a CUDA libtorch). */
  cudaGraphs: boolean;
  /** libtorch's CPU threads now. */
  threads: number;
  /** Whether this build loads compiled UNets (AOTInductor packages; libtorch 2.6 and later). */
  compiledPackages: boolean;
  /** The vector instructions libtorch's CPU kernels use here ('AVX512', 'AVX2'). */
  cpuCapability: string;
  /** 'prebuilt' when loaded from prebuilds/, 'built' when compiled on this machine. */
  binary: 'prebuilt' | 'built';
  /** The prebuilt variant loaded ('torch2.13-cpu', 'torch2.14-cu13'); null for a build from source. */
  variant: string | null;
  addon: string;
}

export function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/** 92400 -> '9.24.0' (cuDNN 9 counts major x 10000 + minor x 100 + patch). */
function cudnnVersion(code: number): string | null {
  if (code <= 0) return null;
  return `${Math.floor(code / 10000)}.${Math.floor((code % 10000) / 100)}.${code % 100}`;
}

/** Loads the addon if it is not loaded yet; throws ENATIVE when it cannot. */
export function versions(): Versions {
  const runtime = native().runtime();
  const binary = loadedBinary();
  const libtorch = binary?.libtorch;
  return {
    difface: packageVersion(),
    node: process.versions.node,
    torch: runtime.torch,
    libtorch: libtorch === undefined ? null : { path: libtorch.libDir, version: libtorch.version ?? null, from: libtorch.from },
    cuda: runtime.cuda,
    cudaReason: runtime.cudaReason === '' ? null : runtime.cudaReason,
    cudaDevices: runtime.cudaDevices,
    gpus: runtime.gpus,
    cudnn: cudnnVersion(runtime.cudnn),
    cudaGraphs: runtime.cudaGraphs,
    threads: runtime.threads,
    compiledPackages: runtime.compiledPackages,
    cpuCapability: runtime.cpuCapability,
    binary: binary?.kind ?? 'built',
    variant: binary?.variant?.name ?? null,
    addon: binary?.file ?? '',
  };
}

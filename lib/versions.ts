/** What this difface runs on: the package, its libtorch, CUDA, and where the addon came from. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { native, nativePath, packageRoot } from './native';

export interface Versions {
  difface: string;
  node: string;
  /** The libtorch the addon runs on. */
  torch: string;
  cuda: boolean;
  cudaDevices: number;
  /** Whether the addon was built with CUDA graphs (against a CUDA libtorch). */
  cudaGraphs: boolean;
  /** libtorch's CPU threads now. */
  threads: number;
  /** 'prebuilt' when loaded from prebuilds/, 'built' when compiled on this machine. */
  binary: 'prebuilt' | 'built';
  addon: string;
}

export function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

export function versions(): Versions {
  const runtime = native().runtime();
  const addon = nativePath() ?? '';
  return {
    difface: packageVersion(),
    node: process.versions.node,
    torch: runtime.torch,
    cuda: runtime.cuda,
    cudaDevices: runtime.cudaDevices,
    cudaGraphs: runtime.cudaGraphs,
    threads: runtime.threads,
    binary: addon.split(path.sep).includes('prebuilds') ? 'prebuilt' : 'built',
    addon,
  };
}

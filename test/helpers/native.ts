// Shared pieces of the native-weights tests: the small configuration's weight-less
// architectures (exported once per run), random checkpoints of a configuration in the
// published formats, and a node that runs with no Python on its PATH.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { modelsDir, runPython, smallReferenceDir, tempDir } from './env';

let small: string | undefined;

/** models/export_architecture.py run on the small reference configuration. */
export function smallArchitecture(): string {
  small ??= (() => {
    const dir = path.join(tempDir('arch'), 'small');
    runPython(path.join(modelsDir, 'export_architecture.py'), ['--config', path.join(smallReferenceDir, 'reference.json'), '--out', dir]);
    return dir;
  })();
  return small;
}

export interface RandomPair {
  dir: string;
  unet: string;
  backbone: string;
  config: string;
}

/** models/random_checkpoint.py: a random pair under the published file names. */
export function randomPair(source: string[], options: { style?: string; format?: string; dtype?: string; seed?: number } = {}): RandomPair {
  const dir = tempDir('pair');
  runPython(path.join(modelsDir, 'random_checkpoint.py'), [...source, '--out', dir, '--published-names',
    '--style', options.style ?? 'plain', '--format', options.format ?? 'zip', '--dtype', options.dtype ?? 'float32',
    '--seed', String(options.seed ?? 0)]);
  return {
    dir, unet: path.join(dir, 'iddpm_ffhq512_ema500000.pth'), backbone: path.join(dir, 'swinir_restoration512_L1.pth'),
    config: path.join(dir, 'config.json'),
  };
}

/** A PATH with node alone on it (a folder holding only a link to this node): no python3, no pip. */
export function nodeOnlyPath(): string {
  const bin = tempDir('nodeonly');
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  return bin;
}

/** Runs a node script with no Python reachable: PATH holds only node, DIFFACE_PYTHON is unset. */
export function runWithoutPython(script: string, args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const clean: Record<string, string> = { PATH: nodeOnlyPath(), HOME: process.env.HOME ?? '/tmp', ...env };
  const result = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: clean, maxBuffer: 64 << 20 });
  const python = spawnSync('/bin/sh', ['-c', 'command -v python3 || command -v python'], { env: clean, encoding: 'utf8' });
  if (python.status === 0) throw new Error('python3 is still reachable without PATH');
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Runs node asynchronously, so a loopback server in this process keeps serving while the
 * child talks to it (spawnSync would block this process's event loop).
 */
export function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

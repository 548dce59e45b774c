/**
 * `difface convert`: published checkpoints -> a model directory.
 * - Without a configuration, natively: the checkpoints are read and checked against the
 *   published architectures (or another folder of weight-less architectures) without Python,
 *   and the directory holds the checkpoints themselves (see install.ts).
 * - With a configuration, the Python converter in models/ exports TorchScript networks with
 *   their weights: that is how other configurations are converted.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

import { publishedArchitectureDir } from './architecture';
import { DIFFACE_RULES } from './checkpoint';
import { DifFaceError, argumentError } from './errors';
import { installCheckpoints } from './install';
import { ModelCard } from './modelcard';
import { packageRoot } from './native';
import { findPython, reportedFailure } from './python';

export interface ConvertOptions {
  /** The diffusion UNet checkpoint (iddpm_ffhq512_ema500000.pth). */
  unet: string;
  /** The SwinIR backbone checkpoint (swinir_restoration512_L1.pth). */
  backbone: string;
  /**
   * The published sampling YAML, or a JSON with unet_config, backbone_config, diffusion_config:
   * converts with Python (PyTorch) into TorchScript networks. Without it, the checkpoints are
   * read natively, with no Python, for the published configuration.
   */
  config?: string;
  /**
   * A folder of weight-less architectures (models/export_architecture.py) to fill instead of
   * the published ones, natively. Not with `config`.
   */
  architecture?: string;
  /** The model directory to write. */
  out: string;
  /** Lines the converter prints while it works. */
  onLog?: (line: string) => void;
}

/** Converts published checkpoints; resolves to the model card it wrote. */
export async function convertCheckpoints(options: ConvertOptions): Promise<ModelCard> {
  for (const key of ['unet', 'backbone', 'out'] as const) {
    if (typeof options[key] !== 'string' || options[key].length === 0) {
      throw argumentError(`convert: ${key} must be a path`);
    }
  }
  if (options.config !== undefined && typeof options.config !== 'string') throw argumentError('convert: config must be a path');
  if (options.architecture !== undefined && typeof options.architecture !== 'string') throw argumentError('convert: architecture must be a path');
  if (options.config !== undefined && options.architecture !== undefined) {
    throw argumentError('convert: give either config (a Python conversion) or architecture (a native one), not both');
  }
  if (options.config === undefined) return convertNatively(options);
  return convertWithPython(options);
}

/** Reads and checks the checkpoints natively and writes a directory that holds them. */
function convertNatively(options: ConvertOptions): Promise<ModelCard> {
  return installCheckpoints({
    unet: { path: path.resolve(options.unet), rules: DIFFACE_RULES },
    backbone: { path: path.resolve(options.backbone), rules: DIFFACE_RULES },
    architecture: path.resolve(options.architecture ?? publishedArchitectureDir()),
    out: path.resolve(options.out),
  });
}

async function convertWithPython(options: ConvertOptions): Promise<ModelCard> {
  const python = findPython();
  const args = [path.join(packageRoot, 'models', 'convert.py'), '--json',
    '--unet', path.resolve(options.unet), '--backbone', path.resolve(options.backbone), '--out', path.resolve(options.out),
    '--config', path.resolve(options.config ?? '')];
  const { code, stdout, stderr } = await run(python.executable, args);
  const failure = reportedFailure(stderr, 'ECONVERT', 'the conversion');
  if (failure !== null) throw failure;
  if (code !== 0) {
    throw new DifFaceError('ECONVERT', `the converter failed (exit code ${String(code)}): ${lastLines(stderr)}`);
  }
  for (const line of stderr.split('\n')) if (line.trim() !== '') options.onLog?.(line);
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as ModelCard;
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-5).join('\n');
}

function run(executable: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', (error) => reject(new DifFaceError('EPYTHON', `cannot run ${executable}: ${error.message}`)));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

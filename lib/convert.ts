/**
 * `difface convert`: published checkpoints -> a model directory (TorchScript networks and a
 * model card). The work is done by the Python converter in models/.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

import { DifFaceError, argumentError, isErrorCode } from './errors';
import { ModelCard } from './modelcard';
import { packageRoot } from './native';
import { findPython } from './python';

export interface ConvertOptions {
  /** The diffusion UNet checkpoint (iddpm_ffhq512_ema500000.pth). */
  unet: string;
  /** The SwinIR backbone checkpoint (swinir_restoration512_L1.pth). */
  backbone: string;
  /** The published sampling YAML, or a JSON with unet_config, backbone_config, diffusion_config. Default: the published configuration. */
  config?: string;
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
  const python = findPython();
  const args = [path.join(packageRoot, 'models', 'convert.py'), '--json',
    '--unet', path.resolve(options.unet), '--backbone', path.resolve(options.backbone), '--out', path.resolve(options.out)];
  if (options.config !== undefined) args.push('--config', path.resolve(options.config));
  const { code, stdout, stderr } = await run(python.executable, args);
  const failure = /^DIFFACE_ERROR (.*)$/m.exec(stderr);
  if (failure !== null) {
    const reported = JSON.parse(failure[1] ?? '{}') as { code?: string; message?: string };
    throw new DifFaceError(isErrorCode(reported.code) ? reported.code : 'ECONVERT', reported.message ?? 'the conversion failed');
  }
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

/**
 * Where the model directory comes from: `--models` (or the `models` option), then
 * DIFFACE_MODELS, then the user cache directory that `difface models fetch` and
 * `difface convert` write to by default, then the demo models that ship with the package.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { MODEL_CARD } from './modelcard';
import { packageRoot } from './native';

export type ModelsSource = 'option' | 'environment' | 'cache' | 'demo';

export interface ResolvedModels {
  dir: string;
  source: ModelsSource;
}

/** Where `difface models fetch` and `difface convert` put the weights unless told otherwise. */
export function userModelsDir(): string {
  const cache = process.env.XDG_CACHE_HOME && path.isAbsolute(process.env.XDG_CACHE_HOME)
    ? process.env.XDG_CACHE_HOME
    : path.join(os.homedir(), '.cache');
  return path.join(cache, 'difface', 'models');
}

/** The small demonstration pair shipped with the package. */
export function demoModelsDir(): string {
  return path.join(packageRoot, 'models', 'demo');
}

/** The first model directory in the order above. An explicit or DIFFACE_MODELS one is used as given. */
export function resolveModels(explicit?: string): ResolvedModels {
  if (explicit !== undefined && explicit !== '') return { dir: path.resolve(explicit), source: 'option' };
  const fromEnvironment = process.env.DIFFACE_MODELS;
  if (fromEnvironment !== undefined && fromEnvironment !== '') return { dir: path.resolve(fromEnvironment), source: 'environment' };
  const cache = userModelsDir();
  if (fs.existsSync(path.join(cache, MODEL_CARD))) return { dir: cache, source: 'cache' };
  return { dir: demoModelsDir(), source: 'demo' };
}

export const DEMO_NOTICE = 'using the demo models: they demonstrate the pipeline and do not restore faces. ' +
  'For real restoration fetch the published weights once: difface models fetch ' +
  '(or, with the files at hand: difface convert --unet iddpm_ffhq512_ema500000.pth --backbone swinir_restoration512_L1.pth)';

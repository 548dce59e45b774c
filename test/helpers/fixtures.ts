// Model directories the tests share, each converted once per run.
import * as path from 'node:path';

import { convertCheckpoints } from 'difface';
import type { ModelCard } from 'difface';

import { modelsDir, referenceDir, runPython, smallReferenceDir, tempDir } from './env';

let small: Promise<{ out: string; card: ModelCard }> | undefined;

/**
 * The small reference checkpoints converted with their reference configuration, and the card
 * the conversion returned. Shared as is: loading a model directory writes nothing into it.
 */
export function smallConversion(): Promise<{ out: string; card: ModelCard }> {
  small ??= (async () => {
    const out = path.join(tempDir('small'), 'models');
    const card = await convertCheckpoints({
      unet: path.join(smallReferenceDir, 'unet.pth'),
      backbone: path.join(smallReferenceDir, 'backbone.pth'),
      config: path.join(smallReferenceDir, 'reference.json'),
      out,
    });
    return { out, card };
  })();
  return small;
}

export async function smallModelDir(): Promise<string> {
  return (await smallConversion()).out;
}

let inpainting: Promise<{ checkpoints: string; out: string; card: ModelCard }> | undefined;

/**
 * Random checkpoints of the small inpainting configuration (test/fixtures/reference/inpainting),
 * written in the published format, and the model directory converted from them.
 */
export function smallInpainting(): Promise<{ checkpoints: string; out: string; card: ModelCard }> {
  inpainting ??= (async () => {
    const dir = tempDir('inpainting');
    const checkpoints = path.join(dir, 'checkpoints');
    runPython(path.join(modelsDir, 'random_checkpoint.py'),
      ['--config', path.join(referenceDir, 'inpainting', 'config.json'), '--out', checkpoints, '--seed', '16']);
    const out = path.join(dir, 'models');
    const card = await convertCheckpoints({
      unet: path.join(checkpoints, 'unet.pth'),
      backbone: path.join(checkpoints, 'backbone.pth'),
      config: path.join(checkpoints, 'config.json'),
      out,
    });
    return { checkpoints, out, card };
  })();
  return inpainting;
}

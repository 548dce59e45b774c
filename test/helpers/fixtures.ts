// Model directories the tests share, each converted once per run.
import * as path from 'node:path';

import { convertCheckpoints } from 'difface';
import type { ModelCard } from 'difface';

import { smallReferenceDir, tempDir } from './env';

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

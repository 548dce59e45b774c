// Model directories the tests share, each converted once per run.
import * as path from 'node:path';

import { convertCheckpoints } from 'difface';

import { smallReferenceDir, tempDir } from './env';

let small: Promise<string> | undefined;

/** The small reference checkpoints converted with their reference configuration. */
export function smallModelDir(): Promise<string> {
  small ??= (async () => {
    const out = path.join(tempDir('small'), 'models');
    await convertCheckpoints({
      unet: path.join(smallReferenceDir, 'unet.pth'),
      backbone: path.join(smallReferenceDir, 'backbone.pth'),
      config: path.join(smallReferenceDir, 'reference.json'),
      out,
    });
    return out;
  })();
  return small;
}

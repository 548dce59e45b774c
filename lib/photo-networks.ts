/**
 * The networks of the published whole-photo chain beyond the restoration pair: each shipped
 * weight-less in models/architectures/photos and filled at its first use, natively, from the
 * published file in the model directory (`difface models fetch --only photos` puts them there).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { CallControl } from './call';
import { DifFaceError, fromNative } from './errors';
import { readManifest } from './manifest';
import { NativeEngine, NativeTensor, packageRoot } from './native';
import { Tensor } from './tensor';

export type PhotoNetworkRole = 'background' | 'detector' | 'parser';

/** Each role's architecture file, its published checkpoint, and what it is called in messages. */
export const PHOTO_NETWORKS: Record<PhotoNetworkRole, { architecture: string; checkpoint: string; what: string; fallback: string }> = {
  background: { architecture: 'background.pt', checkpoint: 'RealESRGAN_x2plus.pth', what: 'the Real-ESRGAN background',
    fallback: "the Lanczos background (background: 'lanczos', --background lanczos)" },
  detector: { architecture: 'detector.pt', checkpoint: 'detection_Resnet50_Final.pth', what: 'the RetinaFace detector',
    fallback: "dlib's detector (detector: 'dlib', --detector dlib)" },
  parser: { architecture: 'parser.pt', checkpoint: 'parsing_parsenet.pth', what: 'the ParseNet face-parsing mask',
    fallback: "the square mask (paste: 'square', --paste square)" },
};

/** What the photo networks need of an engine's core. */
export interface PhotoNetworkCore {
  readonly modelDir: string;
  live(): NativeEngine;
  faces(tensor: Tensor, name: string): NativeTensor;
  run(call: () => Promise<NativeTensor>, control?: CallControl): Promise<Tensor<'float32'>>;
}

function checkpointIn(modelDir: string, role: PhotoNetworkRole): string | undefined {
  const file = path.join(modelDir, PHOTO_NETWORKS[role].checkpoint);
  return fs.existsSync(file) ? file : undefined;
}

/** Loads each photo network once per engine; a failed load is not remembered, so a fixed file is picked up next time. */
export class PhotoNetworks {
  readonly #loading = new Map<PhotoNetworkRole, Promise<void>>();

  constructor(readonly core: PhotoNetworkCore) {}

  /** Whether the role's published file is in the model directory. */
  available(role: PhotoNetworkRole): boolean {
    return checkpointIn(this.core.modelDir, role) !== undefined;
  }

  load(role: PhotoNetworkRole): Promise<void> {
    let loading = this.#loading.get(role);
    if (loading !== undefined) return loading;
    const { architecture, checkpoint: name, what, fallback } = PHOTO_NETWORKS[role];
    const checkpoint = checkpointIn(this.core.modelDir, role);
    if (checkpoint === undefined) {
      return Promise.reject(new DifFaceError('EMODELDIR', `${what} needs ${name} in the model directory ` +
        `'${this.core.modelDir}'; run \`difface models fetch --only photos --dir ${this.core.modelDir}\`, or use ${fallback}`));
    }
    const rules = readManifest().files.find((file) => file.name === name);
    loading = this.core.live().loadPhotoNetwork(role, path.join(packageRoot, 'models', 'architectures', 'photos', architecture), {
      checkpoint, unwrap: rules?.unwrap ?? [], stripPrefix: rules?.stripPrefix ?? '',
    }).catch((error: unknown) => {
      this.#loading.delete(role);
      throw fromNative(error);
    });
    this.#loading.set(role, loading);
    return loading;
  }
}

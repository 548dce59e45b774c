/**
 * A whole photo's background upscaled by Real-ESRGAN x2plus, as the published tool makes it:
 * RRDBNet shipped weight-less in models/architectures/photos, filled at load from
 * RealESRGAN_x2plus.pth in the model directory (`difface models fetch --only photos` puts it
 * there), run on the engine's device in tiles of 400 pixels with 10 pixels of context.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { CallControl } from './call';
import { AbortError, DifFaceError, fromNative } from './errors';
import { readManifest } from './manifest';
import { NativeEngine, NativeTensor, packageRoot } from './native';
import { Tensor } from './tensor';
import * as is from './validate';

/** The published upsampler's tiling. */
export const PUBLISHED_TILE = 400;
export const PUBLISHED_TILE_PAD = 10;

export const BACKGROUND_CHECKPOINT = 'RealESRGAN_x2plus.pth';

export interface TileProgress {
  /** Tiles done so far, from 1. */
  tile: number;
  /** Tiles in all. */
  total: number;
}

export interface UpscaleBackgroundOptions {
  /** Tile side in input pixels, even; 0 runs the photo in one piece. Default 400, as published. */
  tile?: number;
  /** Context each tile sees beyond its edges, even. Default 10, as published. */
  tilePad?: number;
  onTile?: (progress: TileProgress) => void;
  signal?: AbortSignal;
}

/** The weight-less RRDBNet the package ships. */
export function backgroundArchitecture(): string {
  return path.join(packageRoot, 'models', 'architectures', 'photos', 'background.pt');
}

/** The Real-ESRGAN checkpoint in a model directory, or undefined when it is not there. */
export function backgroundCheckpoint(modelDir: string): string | undefined {
  const file = path.join(modelDir, BACKGROUND_CHECKPOINT);
  return fs.existsSync(file) ? file : undefined;
}

function missingCheckpoint(modelDir: string): DifFaceError {
  return new DifFaceError('EMODELDIR', `the Real-ESRGAN background needs ${BACKGROUND_CHECKPOINT} in the model directory ` +
    `'${modelDir}'; run \`difface models fetch --only photos --dir ${modelDir}\`, or use the Lanczos background ` +
    "(background: 'lanczos', --background lanczos)");
}

/** What the background needs of an engine's core: its native engine and a checked tensor call. */
export interface BackgroundCore {
  readonly modelDir: string;
  live(): NativeEngine;
  faces(tensor: Tensor, name: string): NativeTensor;
  run(call: () => Promise<NativeTensor>, control?: CallControl): Promise<Tensor<'float32'>>;
}

/**
 * Loads the background network once per engine (later calls reuse it); EMODELDIR naming the
 * command that fetches the checkpoint when it is missing, ECHECKPOINT when it does not fit.
 */
export class BackgroundNetwork {
  #loading: Promise<void> | undefined;

  constructor(private readonly core: BackgroundCore) {}

  /** Whether the checkpoint is in the model directory, so the Real-ESRGAN background can run. */
  get available(): boolean {
    return backgroundCheckpoint(this.core.modelDir) !== undefined;
  }

  load(): Promise<void> {
    if (this.#loading === undefined) {
      const checkpoint = backgroundCheckpoint(this.core.modelDir);
      if (checkpoint === undefined) return Promise.reject(missingCheckpoint(this.core.modelDir));
      const rules = readManifest().files.find((file) => file.name === BACKGROUND_CHECKPOINT);
      const engine = this.core.live();
      this.#loading = engine.loadBackground(backgroundArchitecture(), {
        checkpoint, unwrap: rules?.unwrap ?? ['params_ema', 'params'], stripPrefix: rules?.stripPrefix ?? '',
      }).catch((error: unknown) => {
        // A failed load is not remembered, so a fixed file is picked up by the next call.
        this.#loading = undefined;
        throw fromNative(error);
      });
    }
    return this.#loading;
  }

  /** image [1, 3, H, W] in [0, 1] -> [1, 3, 2H, 2W], rounded to 8-bit levels as the published upsampler leaves it. */
  async upscale(image: Tensor, options: UpscaleBackgroundOptions = {}): Promise<Tensor<'float32'>> {
    const tile = is.evenPixels(options.tile ?? PUBLISHED_TILE, 'tile');
    const tilePad = is.evenPixels(options.tilePad ?? PUBLISHED_TILE_PAD, 'tilePad');
    const onTile = is.optionalFunction(options.onTile, 'onTile');
    const input = this.core.faces(image, 'image');
    const control = new CallControl(onTile === undefined ? undefined : ({ step, total }: { step: number; total: number }) => onTile({ tile: step, total }),
      options.signal);
    if (control.aborted) throw control.failure(new AbortError());
    await this.load();
    const engine = this.core.live();
    control.attach();
    try {
      return await this.core.run(() => engine.upscaleBackground(input, tile, tilePad, control.progress, control.token), control);
    } finally {
      control.detach();
    }
  }
}

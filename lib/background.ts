/**
 * A whole photo's background upscaled by Real-ESRGAN x2plus, as the published tool makes it:
 * RRDBNet on the engine's device, in tiles of 400 pixels with 10 pixels of context.
 */
import { CallControl } from './call';
import { AbortError } from './errors';
import { PhotoNetworks } from './photo-networks';
import { Tensor } from './tensor';
import * as is from './validate';

/** The published upsampler's tiling. */
export const PUBLISHED_TILE = 400;
export const PUBLISHED_TILE_PAD = 10;

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

/** image [1, 3, H, W] in [0, 1] -> [1, 3, 2H, 2W], rounded to 8-bit levels as the published upsampler leaves it. */
export async function upscaleBackground(networks: PhotoNetworks, image: Tensor, options: UpscaleBackgroundOptions = {}): Promise<Tensor<'float32'>> {
  const tile = is.evenPixels(options.tile ?? PUBLISHED_TILE, 'tile');
  const tilePad = is.evenPixels(options.tilePad ?? PUBLISHED_TILE_PAD, 'tilePad');
  const onTile = is.optionalFunction(options.onTile, 'onTile');
  const input = networks.core.faces(image, 'image');
  const control = new CallControl(onTile === undefined ? undefined : ({ step, total }: { step: number; total: number }) => onTile({ tile: step, total }),
    options.signal);
  if (control.aborted) throw control.failure(new AbortError());
  await networks.load('background');
  const engine = networks.core.live();
  control.attach();
  try {
    return await networks.core.run(() => engine.upscaleBackground(input, tile, tilePad, control.progress, control.token), control);
  } finally {
    control.detach();
  }
}

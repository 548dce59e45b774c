/**
 * restoreImage() and restoreImages(): aligned faces from files or Buffers, restored at their
 * own size and encoded in the format asked for.
 */
import { EngineCore } from './core';
import { DecodedImage, ImageInput, OutputFormat, checkEncodeOptions, compareStrip, decodeImage, defaultOutputFormat, encodeImage } from './image';
import { RestoreFacesOptions, RestoredFace, restoreFaces, seedOf } from './restore';
import * as is from './validate';

export interface RestoreImageOptions extends Omit<RestoreFacesOptions, 'estimates'> {
  /** Output format. Default: the input's own when it is PNG, JPEG or WebP, else PNG. */
  format?: OutputFormat;
  /** JPEG and WebP quality, 1 to 100. Default 95. */
  quality?: number;
  /** Also make a comparison picture: input | backbone estimate | restored. */
  compare?: boolean;
  /** Inputs with more pixels are refused from their header, before decoding. Default 50 million. */
  maxPixels?: number;
}

export interface RestoreImagesOptions extends RestoreImageOptions {
  /** Faces per pass through the networks. Default 4 on CUDA, 1 on the CPU. */
  batchSize?: number;
  /** Called after each batch with the number of images done. */
  onImage?: (done: number, total: number) => void;
}

export interface RestoredImage {
  /** The restored image, encoded. */
  image: Buffer;
  /** input | backbone estimate | restored, as a PNG, when asked for. */
  compare?: Buffer;
  info: {
    /** The input's path, or '<buffer>'. */
    input: string;
    width: number;
    height: number;
    format: OutputFormat;
    inputFormat: string;
    grey: boolean;
    alpha: boolean;
    depth: 8 | 16;
    /** The seed of the generator this image's batch was restored with. */
    seed: bigint;
  };
}

/** Faces per pass when the caller does not say: batching buys little on the CPU. */
export function defaultBatchSize(device: string): number {
  return device === 'cpu' ? 1 : 4;
}

export async function restoreImages(core: EngineCore, device: string, inputs: readonly ImageInput[],
  options: RestoreImagesOptions = {}): Promise<RestoredImage[]> {
  core.live();
  if (!Array.isArray(inputs) || inputs.length === 0) throw is.invalidParameterError('inputs', 'a non-empty array of images', inputs);
  const batchSize = is.batchSize(options.batchSize ?? defaultBatchSize(device));
  const onImage = is.optionalFunction(options.onImage, 'onImage');
  checkEncodeOptions(options);
  const decoded = await Promise.all(inputs.map((input) =>
    decodeImage(input, { ...(options.maxPixels !== undefined ? { maxPixels: options.maxPixels } : {}) })));
  const seed = BigInt(seedOf(options.seed));
  const results: RestoredImage[] = [];
  for (let start = 0; start < decoded.length; start += batchSize) {
    const batch = decoded.slice(start, start + batchSize);
    const faces = await restoreFaces(core, batch, { ...options, seed, estimates: options.compare === true });
    for (let i = 0; i < batch.length; i++) {
      results.push(await encodeRestored(batch[i] as DecodedImage, faces[i] as RestoredFace, options, seed));
    }
    onImage?.(results.length, decoded.length);
  }
  return results;
}

/** Encodes one restored face as RestoredImage, with its comparison picture when asked for. */
export async function encodeRestored(input: DecodedImage, face: RestoredFace,
  options: { format?: OutputFormat; quality?: number; compare?: boolean }, seed: bigint): Promise<RestoredImage> {
  const format = options.format ?? defaultOutputFormat(input.format);
  const image = await encodeImage({
    width: input.width, height: input.height, rgb: face.rgb, grey: input.grey, depth: input.depth,
    ...(input.alpha ? { alpha: input.alpha } : {}),
  }, { format, ...(options.quality !== undefined ? { quality: options.quality } : {}) });
  const compare = options.compare === true && face.estimate ? await compareStrip(input, face.estimate, face.rgb) : undefined;
  return {
    image,
    ...(compare ? { compare } : {}),
    info: {
      input: input.name, width: input.width, height: input.height, format, inputFormat: input.format,
      grey: input.grey, alpha: input.alpha !== undefined, depth: input.depth, seed,
    },
  };
}

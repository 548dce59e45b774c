/**
 * Inpainting (DifFace, arXiv 2212.06512, and its published inpainting tool): holes in an
 * aligned face are filled by diffusing LaMa's estimate to step N and running the reverse
 * loop, whose every x̂₀ is pulled towards the known pixels by one step of the masking
 * regularizer; the known pixels come back as they were.
 *
 * The holes are where a mask says (nonzero, or white in a mask image), or, as the published
 * tool takes them, where all three channels of the face are exactly 0. Faces of another
 * size than the networks' are resized as the published code resizes them; the mask at the
 * networks' size marks every pixel that a hole reaches through the resize (the published
 * tool detects black pixels again after resizing, and misses the holes' blurred edges).
 *
 * Calls go through the engine's queue and batch with each other as restores do.
 */
import { CallControl, OnStep } from './call';
import { EngineCore, SamplingOptions } from './core';
import { argumentError } from './errors';
import { findFaces, faceFindingAvailable } from './faces';
import { DecodedImage, ImageInput, OutputFormat, checkEncodeOptions, decodeImage } from './image';
import { NativeRequestResult, NativeTensor, native } from './native';
import { defaultBatchSize, encodeRestored, RestoredImage } from './restore-images';
import { readResults, seedOf } from './restore';
import { Tensor } from './tensor';
import * as is from './validate';

export interface InpaintOptions extends SamplingOptions {
  /**
   * The holes, [B, 1, H, W] like the image: nonzero where the face is missing. Default:
   * where all three channels of the image are exactly 0, as the published tool finds them.
   */
  mask?: Tensor;
  /** Weight of the masking regularizer, 0 to 1. Default from the model card (0.5). */
  gamma?: number;
  /** Seeds the one generator of this call, as torch.manual_seed(seed). Default: random. */
  seed?: number | bigint;
  onStep?: OnStep;
  signal?: AbortSignal;
  /** Also resolve to LaMa's estimate and the holes (the caller then owns and disposes them). */
  returnEstimate?: boolean;
}

/** What inpaint() resolves to with `returnEstimate: true`. */
export interface Inpainting {
  /** The faces in [0, 1], holes filled, known pixels as they were. */
  inpainted: Tensor<'float32'>;
  /** LaMa's estimate at the face's size, in [0, 1]. */
  estimate: Tensor<'float32'>;
  /** The holes used, [B, 1, H, W], 1 where missing. */
  mask: Tensor<'float32'>;
  seed: bigint;
}

export interface InpaintImagesOptions extends Omit<InpaintOptions, 'mask' | 'returnEstimate'> {
  /**
   * Mask images, one per input (white = hole: a pixel whose mean over its colour channels is
   * at least one half), of the input's width and height. Left out, or `undefined` for an
   * input: that input's holes are its pixels that are exactly black.
   */
  masks?: readonly (ImageInput | undefined)[];
  /** Output format. Default: the input's own when it is PNG, JPEG or WebP, else PNG. */
  format?: OutputFormat;
  /** JPEG and WebP quality, 1 to 100. Default 95. */
  quality?: number;
  /** Also make a comparison picture: input | LaMa's estimate | inpainted. */
  compare?: boolean;
  /** Inputs with more pixels are refused from their header, before decoding. Default 50 million. */
  maxPixels?: number;
  /** Faces per pass through the networks. Default 4 on CUDA, 1 on the CPU. */
  batchSize?: number;
  /** Called after each batch with the number of images done. */
  onImage?: (done: number, total: number) => void;
}

export interface InpaintedImage extends RestoredImage {
  /** How many pixels were holes, and what to know about this input's result. */
  holes: { pixels: number; fraction: number };
  warnings: string[];
}

/** 1 where all three channels are exactly 0 (the published detect_mask: the channels' sum is 0). */
export function blackHoles(rgb: Float32Array, pixels: number, batch = 1): Float32Array {
  const mask = new Float32Array(batch * pixels);
  for (let b = 0; b < batch; b++) {
    const base = b * 3 * pixels;
    for (let p = 0; p < pixels; p++) {
      const sum = (rgb[base + p] as number) + (rgb[base + pixels + p] as number) + (rgb[base + 2 * pixels + p] as number);
      mask[b * pixels + p] = sum === 0 ? 1 : 0;
    }
  }
  return mask;
}

/** A mask image's holes: white pixels (mean over the colour channels at least 1/2). */
function maskImageHoles(mask: DecodedImage): Float32Array {
  const pixels = mask.width * mask.height;
  const holes = new Float32Array(pixels);
  for (let p = 0; p < pixels; p++) {
    const mean = ((mask.rgb[p] as number) + (mask.rgb[pixels + p] as number) + (mask.rgb[2 * pixels + p] as number)) / 3;
    holes[p] = mean >= 0.5 ? 1 : 0;
  }
  return holes;
}

function countHoles(mask: Float32Array, from = 0, to = mask.length): number {
  let count = 0;
  for (let i = from; i < to; i++) if ((mask[i] as number) !== 0) count++;
  return count;
}

/** Every face needs at least one hole: a face without one has nothing to fill. */
function requireHoles(mask: Float32Array, batch: number, what: (b: number) => string, advice: string): void {
  const pixels = mask.length / batch;
  for (let b = 0; b < batch; b++) {
    if (countHoles(mask, b * pixels, (b + 1) * pixels) === 0) {
      throw argumentError(`${what(b)} has no hole: nothing to inpaint; ${advice}`);
    }
  }
}

interface Submission {
  faces: NativeTensor[];
  masks: NativeTensor[];
  count: number;
  options: InpaintOptions | InpaintImagesOptions;
  seed: number | bigint;
  estimates: boolean;
}

/** Queues faces and their masks through the engine; the request takes both when it is made. */
function submit(core: EngineCore, submission: Submission, control?: CallControl): Promise<NativeRequestResult> {
  const { startStep, eta } = core.sampling(submission.options);
  const gamma = is.gamma(submission.options.gamma ?? core.card.sampling.gamma ?? 0.5);
  const calls = control ?? new CallControl(submission.options.onStep, submission.options.signal);
  const request = new (native().NativeRequest)({
    faces: submission.faces, masks: submission.masks, gamma, seed: submission.seed, eta,
    estimates: submission.estimates, cancel: calls.token,
  });
  const side = core.card.sampling.imageSize;
  return core.queue.submit({ request, faces: submission.count, height: side, width: side, startStep, control: calls });
}

/** The image's black pixels as its holes: read before the call is queued. */
async function blackHoleMask(image: Tensor): Promise<Tensor<'float32'>> {
  const [batch, , height, width] = image.shape as unknown as [number, number, number, number];
  const holes = blackHoles(await image.toFloat32(), height * width, batch);
  requireHoles(holes, batch, (b) => `face ${b} of the image`, 'give a mask, or make the missing pixels exactly 0 in all three channels');
  return Tensor.fromFloat32(holes, [batch, 1, height, width]);
}

/** A caller's mask, binary. Its shape is checked before the call is queued; its holes while it waits. */
function checkMaskShape(image: Tensor, mask: Tensor): void {
  const [batch, , height, width] = image.shape as unknown as [number, number, number, number];
  const shape = Tensor.native(mask, 'mask').shape;
  if (shape.length !== 4 || shape[0] !== batch || shape[1] !== 1 || shape[2] !== height || shape[3] !== width) {
    throw is.invalidParameterError('mask', `a tensor of shape [${batch}, 1, ${height}, ${width}], the image's batch and size`, shape);
  }
}

async function binaryMask(mask: Tensor): Promise<Tensor<'float32'>> {
  const holes = await mask.toFloat32();
  const batch = mask.shape[0] as number;
  requireHoles(holes, batch, (b) => `the mask of face ${b}`, 'mark the missing pixels with nonzero values');
  return Tensor.fromFloat32(holes.map((v) => (v !== 0 ? 1 : 0)), mask.shape);
}

export function inpaint(core: EngineCore, image: Tensor, options?: InpaintOptions & { returnEstimate?: false }): Promise<Tensor<'float32'>>;
export function inpaint(core: EngineCore, image: Tensor, options: InpaintOptions & { returnEstimate: true }): Promise<Inpainting>;
export async function inpaint(core: EngineCore, image: Tensor, options: InpaintOptions = {}): Promise<Tensor<'float32'> | Inpainting> {
  core.live();
  core.requireTask('inpainting', 'inpaint');
  const input = core.faces(image, 'image');
  const seed = seedOf(options.seed);
  if (options.mask !== undefined) checkMaskShape(image, options.mask);
  // With a mask the call is queued at once, so that calls made together batch together (the
  // engine binarizes masks itself); its holes are checked while it waits, and a mask with
  // none cancels it. Without one, the holes must be read from the image first.
  const given = options.mask;
  const queuedMask = given ?? await blackHoleMask(image);
  const control = new CallControl(options.onStep, options.signal);
  let pending: Promise<NativeRequestResult>;
  try {
    pending = submit(core, {
      faces: [input], masks: [Tensor.native(queuedMask, 'mask')], count: input.shape[0] as number, options, seed, estimates: true,
    }, control);
  } catch (error) {
    if (given === undefined) queuedMask.dispose();
    throw error;
  }
  // Awaited below; handled now, so a rejection while the mask is read is never unhandled.
  pending.catch(() => undefined);
  let mask: Tensor<'float32'>;
  try {
    mask = given === undefined ? queuedMask as Tensor<'float32'> : await binaryMask(given);
  } catch (error) {
    control.cancel();
    await pending.then((result) => disposeAll(result), () => undefined);
    throw error;
  }
  let result: NativeRequestResult;
  try {
    result = await pending;
  } catch (error) {
    mask.dispose();
    throw error;
  }
  const inpainted = Tensor.adopt(result.restored[0] as NativeTensor) as Tensor<'float32'>;
  const estimate = Tensor.adopt(result.estimates[0] as NativeTensor) as Tensor<'float32'>;
  if (options.returnEstimate === true) return { inpainted, estimate, mask, seed: BigInt(seed) };
  estimate.dispose();
  mask.dispose();
  return inpainted;
}

function disposeAll(result: NativeRequestResult): void {
  for (const handle of [...result.restored, ...result.estimates]) Tensor.adopt(handle).dispose();
}

/** An input decoded with its holes, and what to warn about. */
interface Prepared {
  image: DecodedImage;
  holes: Float32Array;
  warnings: string[];
}

async function prepare(input: ImageInput, maskInput: ImageInput | undefined, maxPixels: number | undefined): Promise<Prepared> {
  const decode = { ...(maxPixels !== undefined ? { maxPixels } : {}) };
  const image = await decodeImage(input, decode);
  const pixels = image.width * image.height;
  let holes: Float32Array;
  if (maskInput === undefined) {
    holes = blackHoles(image.rgb, pixels);
    requireHoles(holes, 1, () => image.name, 'no pixel is exactly black in all three channels; give a mask image (white = hole)');
  } else {
    const mask = await decodeImage(maskInput, decode);
    if (mask.width !== image.width || mask.height !== image.height) {
      throw argumentError(`the mask ${mask.name} is ${mask.width} x ${mask.height} but ${image.name} is ` +
        `${image.width} x ${image.height}; a mask must have its image's size`);
    }
    holes = maskImageHoles(mask);
    requireHoles(holes, 1, () => `the mask ${mask.name}`, 'white pixels (hole) are needed where the face is missing');
  }
  const warnings: string[] = [];
  if (countHoles(holes) === pixels) {
    warnings.push('the whole image is a hole: nothing is known, so the result is a face made up from nothing of the input');
  }
  return { image, holes, warnings };
}

/** Decodes an input and its mask and checks them (readable, the same size, a hole), as inpaintImages() would. */
export async function checkInpaintInput(input: ImageInput, mask: ImageInput | undefined, maxPixels?: number): Promise<void> {
  await prepare(input, mask, maxPixels);
}

async function hasFace(rgb: Float32Array, width: number, height: number): Promise<boolean> {
  const pixels = width * height;
  const interleaved = Buffer.alloc(3 * pixels);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) interleaved[3 * p + c] = Math.round((rgb[c * pixels + p] as number) * 255);
  }
  try {
    return (await findFaces(interleaved, width, height)).length > 0;
  } catch {
    return true;  // nothing to say when the search itself fails
  }
}

/**
 * Inpainting is made for aligned faces. Where faces can be looked for (dlib), say so when
 * neither the input nor the result shows one; a face with large holes is often found only
 * once they are filled.
 */
async function faceWarnings(image: DecodedImage, inpainted: Float32Array): Promise<string[]> {
  if (!faceFindingAvailable().available) return [];
  if (await hasFace(image.rgb, image.width, image.height) || await hasFace(inpainted, image.width, image.height)) return [];
  return ['no face was found in it, before or after inpainting: inpainting is made for aligned faces, so the result may not look right'];
}

export async function inpaintImages(core: EngineCore, device: string, inputs: readonly ImageInput[],
  options: InpaintImagesOptions = {}): Promise<InpaintedImage[]> {
  core.live();
  core.requireTask('inpainting', 'inpaint');
  if (!Array.isArray(inputs) || inputs.length === 0) throw is.invalidParameterError('inputs', 'a non-empty array of images', inputs);
  const masks = options.masks ?? [];
  if (!Array.isArray(masks) || masks.length > inputs.length) {
    throw is.invalidParameterError('masks', `an array of at most ${inputs.length} mask images, one per input`, masks);
  }
  const batchSize = is.batchSize(options.batchSize ?? defaultBatchSize(device));
  const onImage = is.optionalFunction(options.onImage, 'onImage');
  checkEncodeOptions(options);
  if (options.gamma !== undefined) is.gamma(options.gamma);
  const prepared = await Promise.all(inputs.map((input, i) => prepare(input, masks[i], options.maxPixels)));
  const seed = BigInt(seedOf(options.seed));
  const results: InpaintedImage[] = [];
  for (let start = 0; start < prepared.length; start += batchSize) {
    const batch = prepared.slice(start, start + batchSize);
    const faces = await inpaintDecoded(core, batch, options, seed);
    for (let i = 0; i < batch.length; i++) {
      const { image, holes, warnings } = batch[i] as Prepared;
      const face = faces[i] as { rgb: Float32Array; estimate?: Float32Array };
      const encoded = await encodeRestored(image, face, options, seed);
      const pixels = countHoles(holes);
      results.push({
        ...encoded, holes: { pixels, fraction: pixels / holes.length }, warnings: [...warnings, ...await faceWarnings(image, face.rgb)],
      });
    }
    onImage?.(results.length, prepared.length);
  }
  return results;
}

/** Decoded faces and their holes through the networks as one batch, each at its own size. */
async function inpaintDecoded(core: EngineCore, batch: readonly Prepared[], options: InpaintImagesOptions,
  seed: bigint): Promise<{ rgb: Float32Array; estimate?: Float32Array }[]> {
  const faces = batch.map(({ image }) => Tensor.fromFloat32(image.rgb, [1, 3, image.height, image.width]));
  const masks = batch.map(({ image, holes }) => Tensor.fromFloat32(holes, [1, 1, image.height, image.width]));
  let pending: Promise<NativeRequestResult>;
  try {
    pending = submit(core, {
      faces: faces.map((t) => Tensor.native(t, 'face')), masks: masks.map((t) => Tensor.native(t, 'mask')),
      count: batch.length, options, seed, estimates: options.compare === true,
    });
  } finally {
    // The request took the faces and masks when it was made.
    for (const t of [...faces, ...masks]) t.dispose();
  }
  return readResults(await pending);
}

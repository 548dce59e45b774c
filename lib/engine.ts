/**
 * The DifFace engine: both published networks on one device, and the published sampler.
 *
 *   const engine = await DifFace.load('models/difface');
 *   const restored = await engine.restore(lq, { seed: 1 });   // lq: [B, 3, 512, 512] in [0, 1]
 *
 * Every model call runs on the engine's own worker thread; the event loop stays free. This
 * class only holds the engine and hands each call to the file that does it:
 *   load.ts             options and loading        steps.ts    estimate, transition, step, reverse, unet
 *   restore.ts          restore(), the queue's use  restore-images.ts  images from files and Buffers
 *   photo.ts            whole photos               warp and paste below, on tensors
 */
import * as path from 'node:path';

import { EngineCore } from './core';
import { DecodedImage, ImageInput } from './image';
import { InpaintImagesOptions, InpaintOptions, InpaintedImage, Inpainting, inpaint, inpaintImages } from './inpaint';
import { CompiledState, LoadOptions, checkLoadOptions, loadNative } from './load';
import { readModelCard, ModelCard } from './modelcard';
import { native } from './native';
import { UpscaleBackgroundOptions, upscaleBackground } from './background';
import type { FoundFace } from './faces';
import { PhotoNetworks } from './photo-networks';
import * as retinaface from './retinaface';
import * as faceParsing from './face-parsing';
import { PhotoOptions, RestoredPhoto, restorePhoto } from './photo';
import { BatchQueue, EngineStats } from './queue';
import { Restoration, RestoreFacesOptions, RestoreOptions, RestoredFace, restore, restoreFaces } from './restore';
import { RestoreImageOptions, RestoreImagesOptions, RestoredImage, restoreImages } from './restore-images';
import * as steps from './steps';
import { Generator } from './generator';
import { Tensor } from './tensor';
import { DType, invalidParameterError, seed as checkSeed } from './validate';
import { Versions, versions } from './versions';

export class DifFace {
  /** The model directory's card: configurations, schedule, sampling defaults, provenance. */
  readonly card: ModelCard;
  readonly modelDir: string;
  readonly device: string;
  readonly dtype: DType;
  readonly threads: number;
  readonly #core: EngineCore;
  readonly #photoNetworks: PhotoNetworks;
  readonly #compiled: CompiledState;

  private constructor(core: EngineCore, options: Required<LoadOptions>, compiled: CompiledState) {
    this.#core = core;
    this.#compiled = compiled;
    this.#photoNetworks = new PhotoNetworks(core);
    this.modelDir = core.modelDir;
    this.card = core.card;
    this.device = core.live().device;
    this.dtype = core.live().dtype as DType;
    this.threads = options.threads;
  }

  /** The package, the libtorch it runs on, CUDA, and whether the binary was prebuilt or built here. */
  static versions(): Versions {
    return versions();
  }

  /** Engines of this process whose networks are loaded: dispose() and the garbage collector lower it. */
  static liveEngines(): number {
    return native().liveEngines();
  }

  /** Loads a model directory written by `difface convert` onto a device. */
  static async load(modelDir: string, options: LoadOptions = {}): Promise<DifFace> {
    const checked = checkLoadOptions(options);
    const dir = path.resolve(modelDir);
    const card = readModelCard(dir);
    const { engine, compiled } = await loadNative(dir, card, checked);
    const queue = new BatchQueue(engine, { maxBatch: checked.maxBatch, maxQueue: checked.maxQueue });
    return new DifFace(new EngineCore(dir, card, engine, queue), checked, compiled);
  }

  /** Sampling defaults from the model card. */
  get defaults(): { startStep: number; eta: number; imageSize: number } {
    return { ...this.card.sampling };
  }

  /** The training timestep of each index of the respaced chain. */
  get timesteps(): readonly number[] {
    return this.#core.live().timesteps;
  }

  /** ᾱ of each index of the respaced chain (alphas_cumprod, float64), as the sampler applies it. */
  get alphaBar(): readonly number[] {
    return this.#core.live().alphaBar;
  }

  /** Calls queued on this engine's worker and not yet started. */
  get pending(): number {
    return this.#core.disposed ? 0 : this.#core.live().pending;
  }

  get disposed(): boolean {
    return this.#core.disposed;
  }

  /** A generator seeded as torch.manual_seed(seed) seeds this engine's device. */
  generator(seed: number | bigint): Generator {
    return new Generator(this.#core.live().generator(checkSeed(seed)));
  }

  /** The UNet's raw output [B, 2C or C, H, W] for x at training timesteps t (one per batch item). */
  unet(x: Tensor, t: readonly number[]): Promise<Tensor<'float32'>> {
    return steps.unet(this.#core, x, t);
  }

  /** The backbone's estimate for faces lq [B, 3, H, W] in [0, 1], unclamped. */
  estimate(lq: Tensor): Promise<Tensor<'float32'>> {
    return steps.estimate(this.#core, lq);
  }

  /** x_N ~ q(x_N | x̂₀): clamps the estimate to [0, 1], maps it to [-1, 1] and diffuses it to step N. */
  transition(estimate: Tensor, options: steps.TransitionOptions): Promise<Tensor<'float32'>> {
    return steps.transition(this.#core, estimate, options);
  }

  /**
   * One reverse step, x_i -> x_{i-1}, both in [-1, 1]: what the reverse loop does at index i.
   * A loop of step() calls from N-1 down to 0 with one generator equals reverse() before its
   * final mapping to [0, 1].
   */
  step(x: Tensor, options: steps.StepOptions & { returnPredicted?: false }): Promise<Tensor<'float32'>>;
  step(x: Tensor, options: steps.StepOptions & { returnPredicted: true }): Promise<steps.StepResult>;
  async step(x: Tensor, options: steps.StepOptions): Promise<Tensor<'float32'> | steps.StepResult> {
    const result = await steps.step(this.#core, x, options);
    if (options.returnPredicted === true) return result;
    result.predictedX0.dispose();
    return result.previous;
  }

  /** The reverse loop from x_N at index N down to 0; resolves to faces in [0, 1]. */
  reverse(xN: Tensor, options: steps.ReverseOptions): Promise<Tensor<'float32'>> {
    return steps.reverse(this.#core, xN, options);
  }

  /**
   * Estimate, transition and reverse, with one generator seeded once: with the same seed it
   * makes the published sampler's random draws in the published order. The faces are taken
   * when the call is made: the caller may dispose lq at once.
   */
  restore(lq: Tensor, options?: RestoreOptions & { returnEstimate?: false }): Promise<Tensor<'float32'>>;
  restore(lq: Tensor, options: RestoreOptions & { returnEstimate: true }): Promise<Restoration>;
  restore(lq: Tensor, options: RestoreOptions = {}): Promise<Tensor<'float32'> | Restoration> {
    return restore(this.#core, lq, options as RestoreOptions & { returnEstimate: true });
  }

  /**
   * Fills the holes of aligned faces [B, 3, H, W] in [0, 1] (an inpainting model directory):
   * the holes are `mask`'s nonzero pixels, or the image's exactly black ones. See inpaint.ts.
   */
  inpaint(image: Tensor, options?: InpaintOptions & { returnEstimate?: false }): Promise<Tensor<'float32'>>;
  inpaint(image: Tensor, options: InpaintOptions & { returnEstimate: true }): Promise<Inpainting>;
  inpaint(image: Tensor, options: InpaintOptions = {}): Promise<Tensor<'float32'> | Inpainting> {
    return inpaint(this.#core, image, options as InpaintOptions & { returnEstimate: true });
  }

  /** Fills the holes of aligned faces from files or Buffers, with mask images or their black pixels. */
  inpaintImages(inputs: readonly ImageInput[], options: InpaintImagesOptions = {}): Promise<InpaintedImage[]> {
    return inpaintImages(this.#core, this.device, inputs, options);
  }

  /** Queue depth, batch sizes, outcomes and latencies of this engine's calls. */
  stats(): EngineStats {
    return this.#core.queue.stats();
  }

  /** @internal Calls `listener` with the faces of every batch that starts (for metrics); returns how to stop. */
  onBatch(listener: (faces: number) => void): () => void {
    return this.#core.queue.onBatch(listener);
  }

  /**
   * Faces of any sizes, decoded, restored as one batch: each is resized to the model's size
   * with antialiased bicubic interpolation (as the published code does), restored, and
   * resized back to its own size.
   */
  restoreDecoded(faces: readonly DecodedImage[], options: RestoreFacesOptions = {}): Promise<RestoredFace[]> {
    return restoreFaces(this.#core, faces, options);
  }

  /**
   * Restores one aligned face from a file path or a Buffer (PNG, JPEG, WebP, TIFF, AVIF;
   * 8 or 16 bits; grey, RGB, with or without alpha; EXIF orientation applied), at its own
   * size, encoded in the format asked for.
   */
  async restoreImage(input: ImageInput, options: RestoreImageOptions = {}): Promise<RestoredImage> {
    const [restored] = await restoreImages(this.#core, this.device, [input], { ...options, batchSize: 1 });
    return restored as RestoredImage;
  }

  /** Restores several aligned faces, several at a time through the networks. */
  restoreImages(inputs: readonly ImageInput[], options: RestoreImagesOptions = {}): Promise<RestoredImage[]> {
    return restoreImages(this.#core, this.device, inputs, options);
  }

  /** Antialiased bicubic resize of [B, C, h, w] to [B, C, height, width], as the published code resizes faces. */
  resize(x: Tensor, size: readonly [number, number]): Promise<Tensor<'float32'>> {
    return steps.resize(this.#core, x, size);
  }

  /**
   * Restores every face of an ordinary photo: finds the faces (dlib), aligns each to the
   * published 512 x 512 template, restores them as one batch, and pastes them back with a
   * feathered mask into the photo upscaled (by 2 unless told otherwise).
   */
  restorePhoto(input: ImageInput, options: PhotoOptions & Omit<RestoreFacesOptions, 'estimates'> = {}): Promise<RestoredPhoto> {
    this.#core.live();
    return restorePhoto(this, input, options);
  }

  /**
   * Cuts an image [1, C, H, W] through an affine map of pixel coordinates (output pixel ->
   * image pixel, pixel centres at integers, as OpenCV's warpAffine), bilinear, with a
   * constant border colour (one value per channel) outside the image.
   */
  warpAffine(image: Tensor, outToImage: readonly number[], size: readonly [number, number],
    border: readonly number[]): Promise<Tensor<'float32'>> {
    const engine = this.#core.live();
    const input = Tensor.native(image, 'image');
    if (!Array.isArray(outToImage) || outToImage.length !== 6) throw invalidParameterError('outToImage', 'an array of 6 numbers', outToImage);
    return this.#core.run(() => engine.warpAffine(input, outToImage, size[0], size[1], border));
  }

  /**
   * Pastes faces [1, 3, S, S] into a canvas [1, 3, H, W], one after another as the published
   * helper does: each through its map (canvas pixel -> face pixel), under a mask that covers
   * the face's square, eroded and blurred in proportion to the face's size, and lowered to
   * the face's parse mask ([1, 1, S, S], from faceMasks) where `parseMasks` gives one per
   * face; blended in float64 on 8-bit levels and truncated to levels. `scale` is the canvas's
   * scale to the photo the faces came from.
   */
  pasteFaces(canvas: Tensor, faces: readonly Tensor[], canvasToFace: readonly (readonly number[])[],
    scale: number, parseMasks?: readonly Tensor[]): Promise<Tensor<'float32'>> {
    const engine = this.#core.live();
    const target = this.#core.faces(canvas, 'canvas');
    if (faces.length !== canvasToFace.length) throw invalidParameterError('canvasToFace', `one map per face (${faces.length})`, canvasToFace);
    if (parseMasks !== undefined && parseMasks.length !== faces.length) {
      throw invalidParameterError('parseMasks', `one mask per face (${faces.length})`, parseMasks);
    }
    const masks = parseMasks?.map((m) => this.#core.faces(m, 'parse mask', 1));
    return this.#core.run(() => engine.pasteFaces(target, faces.map((f) => Tensor.native(f, 'face')), [...canvasToFace], scale, masks));
  }

  /** Whether parsing_parsenet.pth is in the model directory, so whole photos get the published face-parsing paste mask. */
  get parserAvailable(): boolean {
    return this.#photoNetworks.available('parser');
  }

  /**
   * ParseNet's scores of its 19 labels for faces [N, 3, H, W] in [0, 1] (read as 8-bit, resized
   * to 512 when they are not): [N, 19, 512, 512], in float32 as published. The network is
   * loaded at the first call.
   */
  parseFaces(faces: Tensor): Promise<Tensor<'float32'>> {
    this.#core.live();
    return faceParsing.parseFaces(this.#photoNetworks, faces);
  }

  /** Label scores [N, 19, S, S] as the published paste masks [N, 1, S, S]; see face-parsing.ts. */
  faceMasks(scores: Tensor): Promise<Tensor<'float32'>> {
    this.#core.live();
    return faceParsing.faceMasks(this.#photoNetworks, scores);
  }

  /** Each face [1, 3, 512, 512] parsed and made into its paste mask, as restorePhoto does. */
  pasteMasks(faces: readonly Tensor[]): Promise<Tensor<'float32'>[]> {
    this.#core.live();
    return faceParsing.pasteMasks(this.#photoNetworks, faces);
  }

  /** Whether RealESRGAN_x2plus.pth is in the model directory, so whole photos get the published Real-ESRGAN background. */
  get backgroundAvailable(): boolean {
    return this.#photoNetworks.available('background');
  }

  /** Whether detection_Resnet50_Final.pth is in the model directory, so whole photos find faces with RetinaFace as published. */
  get detectorAvailable(): boolean {
    return this.#photoNetworks.available('detector');
  }

  /**
   * The faces RetinaFace (ResNet-50) finds in a photo [1, 3, H, W] in [0, 1], as the published
   * chain finds them (enlarged to a short side of 640, threshold 0.8, NMS 0.4), best first, in
   * the photo's pixels. The network is loaded at the first call.
   */
  detectFaces(image: Tensor): Promise<FoundFace[]> {
    this.#core.live();
    return retinaface.detectFaces(this.#photoNetworks, image);
  }

  /** RetinaFace's post-processing alone on given outputs (loc [N, 4], conf [N, 2], landmarks [N, 10]); see retinaface.ts. */
  decodeDetections(outputs: { loc: Tensor; conf: Tensor; landmarks: Tensor }, height: number, width: number, scale = 1): Promise<FoundFace[]> {
    this.#core.live();
    return retinaface.decodeDetections(this.#photoNetworks, outputs, height, width, scale);
  }

  /**
   * Upscales a photo [1, 3, H, W] in [0, 1] twice with Real-ESRGAN x2plus, tile by tile as
   * the published upsampler does (tiles of 400 pixels, 10 of context), on the engine's device
   * and dtype; the result is rounded to 8-bit levels. The network is loaded at the first call.
   */
  upscaleBackground(image: Tensor, options: UpscaleBackgroundOptions = {}): Promise<Tensor<'float32'>> {
    this.#core.live();
    return upscaleBackground(this.#photoNetworks, image, options);
  }

  /** Whether the UNet is replayed as CUDA graphs: allowed, shapes captured, and whether a capture failed. */
  cudaGraphs(): { allowed: boolean; captured: number; failed: boolean } {
    return this.#core.live().cudaGraphs();
  }

  /**
   * Which UNet runs: the batch sizes that compiled packages (`difface compile`) serve at their
   * compiled image size, every other shape running the TorchScript export, and a note for each
   * package left out (stale, missing, or not loadable here).
   */
  compiled(): CompiledState {
    this.#core.live();
    return { mode: this.#compiled.mode, batches: [...this.#compiled.batches], notes: [...this.#compiled.notes] };
  }

  /** The device allocator's bytes in use now and at peak (CUDA; zeros on the CPU). */
  memory(): { currentBytes: number; peakBytes: number } {
    return this.#core.live().memory();
  }

  /** Starts a new peak for memory(). */
  resetPeakMemory(): void {
    this.#core.live().resetPeakMemory();
  }

  /**
   * Frees the networks. Calls running now stop at their next step and reject with an
   * AbortError; later calls throw EDISPOSED. Calling it again does nothing.
   */
  dispose(): void {
    this.#core.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export { Generator };
export type { LoadOptions };

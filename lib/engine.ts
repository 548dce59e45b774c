/**
 * The DifFace engine: both published networks on one device, and the published sampler.
 *
 *   const engine = await DifFace.load('models/difface');
 *   const restored = await engine.restore(lq, { seed: 1 });   // lq: [B, 3, 512, 512] in [0, 1]
 *
 * Every model call runs on the engine's own worker thread; the event loop stays free.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { randomInt } from 'node:crypto';

import { AbortError, DifFaceError, argumentError, fromNative } from './errors';
import {
  DecodedImage, ImageInput, OutputFormat, checkEncodeOptions, compareStrip, decodeImage, defaultOutputFormat, encodeImage,
} from './image';
import { ModelCard, readModelCard } from './modelcard';
import { NativeCancelToken, NativeEngine, NativeEngineOptions, NativeGenerator, NativeTensor, native } from './native';
import { BatchQueue, EngineStats } from './queue';
import { PhotoOptions, RestoredPhoto, restorePhotoWith } from './photo';
import { DType, Tensor } from './tensor';
import { Versions, versions } from './versions';

/** 'cpu', 'cuda' (the current GPU) or 'cuda:N'. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export interface LoadOptions {
  /** Where the networks run. Default 'cpu'. */
  device?: Device;
  /**
   * Precision of the networks. 'float16' and 'bfloat16' (CUDA only) follow the published
   * fp16 mode: the UNet's torso convolutions run in that type, GroupNorm in float32; the
   * sampler itself always works in float32. Default 'float32'.
   */
  dtype?: DType;
  /** CPU threads for the networks. Default: every core. Process-wide in libtorch. */
  threads?: number;
  /**
   * Most faces that go through the networks together: concurrent calls with the same input
   * size and start step share a batch up to this. Each keeps its own seed and eta, and gets
   * what it would get alone. 1 turns batching off. Default 8.
   */
  maxBatch?: number;
  /** Most calls that may wait; past it, calls reject at once with EQUEUEFULL. Default 1024. */
  maxQueue?: number;
}

/** One finished reverse step. */
export interface StepProgress {
  /** Steps done so far, from 1. */
  step: number;
  /** Steps in this loop (the start step). */
  total: number;
  /** The training timestep the UNet was just called with. */
  timestep: number;
}

export interface TransitionOptions {
  /** Index N of the respaced chain to diffuse the estimate to. Default from the model card (100). */
  startStep?: number;
  generator: Generator;
}

export interface StepOptions {
  /** Respaced index i of x: the step moves it to i - 1 (the UNet is called at timesteps[i]). */
  index: number;
  /** DDIM eta in [0, 1]. Default from the model card (0.5). */
  eta?: number;
  generator: Generator;
}

export interface ReverseOptions {
  /** The index x_N was drawn at; the loop runs N-1 ... 0. Default from the model card (100). */
  startStep?: number;
  /** DDIM eta in [0, 1]: 0 is deterministic. Default from the model card (0.5). */
  eta?: number;
  generator: Generator;
  /** Called on the main thread after each step. Throwing from it stops the call with that error. */
  onStep?: (progress: StepProgress) => void;
  /** Stops the call between two steps; it then rejects with an AbortError. */
  signal?: AbortSignal;
}

export interface RestoreOptions {
  startStep?: number;
  eta?: number;
  /** Seeds the one generator of this call, as torch.manual_seed(seed). Default: random. */
  seed?: number | bigint;
  onStep?: (progress: StepProgress) => void;
  signal?: AbortSignal;
  /** Also resolve to the backbone's estimate (the caller then owns and disposes both). */
  returnEstimate?: boolean;
}

/** What restore() resolves to with `returnEstimate: true`. */
export interface Restoration {
  /** Restored faces in [0, 1]. */
  restored: Tensor<'float32'>;
  /** The backbone's estimate x̂₀, unclamped. */
  estimate: Tensor<'float32'>;
  /** The seed the generator was seeded with. */
  seed: bigint;
}

export interface RestoreFacesOptions {
  startStep?: number;
  eta?: number;
  /** Seeds the batch's one generator. Default: random. */
  seed?: number | bigint;
  onStep?: (progress: StepProgress) => void;
  signal?: AbortSignal;
  /** Also return each face's backbone estimate (for comparison pictures). */
  estimates?: boolean;
}

/** One restored face, at its input's size. */
export interface RestoredFace {
  /** R, G and B planes ([3, height, width]) in [0, 1]. */
  rgb: Float32Array;
  /** The backbone's estimate at the same size, when asked for. */
  estimate?: Float32Array;
}

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

/** A seeded random generator of one engine's device. */
export class Generator {
  /** @internal */
  constructor(readonly handle: NativeGenerator) {}

  /** The seed it was made with. */
  get seed(): bigint {
    return this.handle.seed;
  }

  /** A standard normal draw, as torch.randn(shape) after torch.manual_seed(seed) on the device. */
  async randn<const S extends readonly number[]>(shape: S): Promise<Tensor<'float32', S>> {
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw argumentError('randn: shape must be an array of non-negative integers');
    }
    try {
      return Tensor.adopt(await this.handle.randn(shape)) as Tensor<'float32', S>;
    } catch (error) {
      throw fromNative(error);
    }
  }
}

const DEVICE_PATTERN = /^(cpu|cuda|cuda:\d+)$/;
const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16'];

function checkLoadOptions(options: LoadOptions): Required<LoadOptions> {
  if (typeof options !== 'object' || options === null) throw argumentError('load options must be an object');
  const device = options.device ?? 'cpu';
  if (typeof device !== 'string' || !DEVICE_PATTERN.test(device)) {
    throw argumentError(`device must be 'cpu', 'cuda' or 'cuda:N', got ${JSON.stringify(device)}`);
  }
  const dtype = options.dtype ?? 'float32';
  if (!DTYPES.includes(dtype)) {
    throw argumentError(`dtype must be one of ${DTYPES.join(', ')}, got ${JSON.stringify(dtype)}`);
  }
  if (dtype !== 'float32' && device === 'cpu') {
    throw argumentError(`dtype '${dtype}' is only supported on CUDA devices; use 'float32' on the CPU`);
  }
  const threads = options.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
    throw argumentError(`threads must be an integer from 1 to 1024, got ${String(options.threads)}`);
  }
  const maxBatch = options.maxBatch ?? 8;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw argumentError(`maxBatch must be an integer of at least 1, got ${String(options.maxBatch)}`);
  const maxQueue = options.maxQueue ?? 1024;
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw argumentError(`maxQueue must be a non-negative integer, got ${String(options.maxQueue)}`);
  return { device, dtype, threads, maxBatch, maxQueue };
}

function checkSeed(seed: unknown): number | bigint {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 1n << 64n) throw argumentError('seed must be a non-negative integer below 2^64');
    return seed;
  }
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw argumentError(`seed must be a non-negative safe integer or a bigint, got ${String(seed)}`);
  }
  return seed;
}

/** A fresh seed when the caller gave none: below 2^47, so it prints and parses as a plain number. */
export function randomSeed(): number {
  return randomInt(0, 2 ** 47);
}

function seedOf(seed: unknown): number | bigint {
  return seed === undefined ? randomSeed() : checkSeed(seed);
}

function checkFunction(value: unknown, what: string): void {
  if (value !== undefined && typeof value !== 'function') throw argumentError(`${what} must be a function`);
}

function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw argumentError('signal must be an AbortSignal');
  return signal;
}

function abortReason(signal: AbortSignal): AbortError {
  return new AbortError('the operation was aborted', { cause: signal.reason });
}

/** The engine's network files: TorchScript exports, or architectures and the checkpoints that fill them. */
function networkFiles(dir: string, card: ModelCard): Pick<NativeEngineOptions, 'unet' | 'backbone' | 'unetWeights' | 'backboneWeights'> {
  const files = (entry: ModelCard['unet']) => entry.architecture === undefined
    ? { file: path.join(dir, entry.file) }
    : { file: path.join(dir, entry.architecture.file), weights: { checkpoint: path.join(dir, entry.file), ...entry.checkpoint } };
  const unet = files(card.unet);
  const backbone = files(card.backbone);
  return { unet: unet.file, backbone: backbone.file, unetWeights: unet.weights, backboneWeights: backbone.weights };
}

export class DifFace {
  /** The model directory's card: configurations, schedule, sampling defaults, provenance. */
  readonly card: ModelCard;
  readonly modelDir: string;
  readonly device: string;
  readonly dtype: DType;
  readonly threads: number;
  readonly #engine: NativeEngine;
  readonly #queue: BatchQueue;
  #disposed = false;

  private constructor(modelDir: string, card: ModelCard, engine: NativeEngine, options: Required<LoadOptions>) {
    this.modelDir = modelDir;
    this.card = card;
    this.#engine = engine;
    this.#queue = new BatchQueue(engine, { maxBatch: options.maxBatch, maxQueue: options.maxQueue });
    this.device = engine.device;
    this.dtype = engine.dtype as DType;
    this.threads = options.threads;
  }

  /** The package, the libtorch it runs on, CUDA, and whether the binary was prebuilt or built here. */
  static versions(): Versions {
    return versions();
  }

  /** Loads a model directory written by `difface convert` onto a device. */
  static async load(modelDir: string, options: LoadOptions = {}): Promise<DifFace> {
    const checked = checkLoadOptions(options);
    const dir = path.resolve(modelDir);
    const card = readModelCard(dir);
    try {
      const engine = await native().loadEngine({
        ...networkFiles(dir, card),
        device: checked.device,
        dtype: checked.dtype,
        threads: checked.threads,
        schedule: card.schedule,
      });
      return new DifFace(dir, card, engine, checked);
    } catch (error) {
      const failure = fromNative(error);
      // Options were checked above, so a refusal here is about the directory's content.
      if (failure.code === 'EMODELDIR' || failure.code === 'EARG') {
        throw new DifFaceError('EMODELDIR', `model directory '${dir}': ${failure.message}`, { cause: error });
      }
      throw failure;
    }
  }

  /** Sampling defaults from the model card. */
  get defaults(): { startStep: number; eta: number; imageSize: number } {
    return { ...this.card.sampling };
  }

  /** The training timestep of each index of the respaced chain. */
  get timesteps(): readonly number[] {
    return this.live().timesteps;
  }

  /** Calls queued on this engine and not yet started. */
  get pending(): number {
    return this.#disposed ? 0 : this.#engine.pending;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** A generator seeded as torch.manual_seed(seed) seeds this engine's device. */
  generator(seed: number | bigint): Generator {
    const engine = this.live();
    return new Generator(engine.generator(checkSeed(seed)));
  }

  /** The UNet's raw output [B, 2C or C, H, W] for x at training timesteps t (one per batch item). */
  async unet(x: Tensor, t: readonly number[]): Promise<Tensor<'float32'>> {
    const engine = this.live();
    const input = Tensor.native(x, 'x');
    if (!Array.isArray(t) || !t.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw argumentError('t must be an array of finite numbers, one timestep per batch item');
    }
    if (t.length !== input.shape[0]) {
      throw argumentError(`t holds ${t.length} timesteps but x has a batch of ${String(input.shape[0])}`);
    }
    return this.call(() => engine.unet(input, t));
  }

  /** The backbone's estimate for faces lq [B, 3, H, W] in [0, 1], unclamped. */
  async estimate(lq: Tensor): Promise<Tensor<'float32'>> {
    const engine = this.live();
    const input = this.faces(lq, 'lq');
    return this.call(() => engine.estimate(input));
  }

  /** x_N ~ q(x_N | x̂₀): clamps the estimate to [0, 1], maps it to [-1, 1] and diffuses it to step N. */
  async transition(estimate: Tensor, options: TransitionOptions): Promise<Tensor<'float32'>> {
    const engine = this.live();
    const input = this.faces(estimate, 'estimate');
    const { startStep } = this.sampling(options ?? {});
    const generator = this.generatorOf(options);
    return this.call(() => engine.transition(input, startStep, generator));
  }

  /**
   * One reverse step, x_i -> x_{i-1}, both in [-1, 1]: what the reverse loop does at index i.
   * A loop of step() calls from N-1 down to 0 with one generator equals reverse() before its
   * final mapping to [0, 1].
   */
  async step(x: Tensor, options: StepOptions): Promise<Tensor<'float32'>> {
    const engine = this.live();
    const input = this.faces(x, 'x');
    const index = options?.index;
    const last = engine.timesteps.length - 1;
    if (!Number.isInteger(index) || index < 0 || index > last) {
      throw argumentError(`index must be an integer from 0 to ${last}, got ${String(index)}`);
    }
    const eta = this.eta(options.eta);
    const generator = this.generatorOf(options);
    return this.call(() => engine.step(input, index, eta, generator));
  }

  /** The reverse loop from x_N at index N down to 0; resolves to faces in [0, 1]. */
  async reverse(xN: Tensor, options: ReverseOptions): Promise<Tensor<'float32'>> {
    const engine = this.live();
    const input = this.faces(xN, 'xN');
    const { startStep, eta } = this.sampling(options ?? {});
    const generator = this.generatorOf(options);
    checkFunction(options.onStep, 'onStep');
    const signal = checkSignal(options.signal);
    const reporter = new StepReporter(options.onStep);
    return this.withSignal(signal, (token) =>
      this.call(() => engine.reverse(input, startStep, eta, generator, reporter.callback, token), reporter));
  }

  /**
   * Estimate, transition and reverse, with one generator seeded once: with the same seed it
   * makes the published sampler's random draws in the published order.
   */
  restore(lq: Tensor, options?: RestoreOptions & { returnEstimate?: false }): Promise<Tensor<'float32'>>;
  restore(lq: Tensor, options: RestoreOptions & { returnEstimate: true }): Promise<Restoration>;
  async restore(lq: Tensor, options: RestoreOptions = {}): Promise<Tensor<'float32'> | Restoration> {
    this.live();
    const input = this.faces(lq, 'lq');
    const { startStep, eta } = this.sampling(options);
    const seed = seedOf(options.seed);
    checkFunction(options.onStep, 'onStep');
    const signal = checkSignal(options.signal);
    const [height, width] = [input.shape[2] as number, input.shape[3] as number];
    const result = await this.#queue.submit({
      group: { lq: input, seed, eta, estimates: true },
      faces: input.shape[0] as number,
      key: `${height}x${width}@${startStep}`,
      side: height,
      startStep,
      onStep: progressOf(options.onStep),
      signal,
    });
    const restored = Tensor.adopt((result.restored ?? [])[0] as NativeTensor) as Tensor<'float32'>;
    const estimate = Tensor.adopt((result.estimates ?? [])[0] as NativeTensor) as Tensor<'float32'>;
    if (options.returnEstimate === true) return { restored, estimate, seed: BigInt(seed) };
    estimate.dispose();
    return restored;
  }

  /** Queue depth, batch sizes, outcomes and latencies of this engine's calls. */
  stats(): EngineStats {
    return this.#queue.stats();
  }

  /**
   * Faces of any sizes, decoded, restored as one batch: each is resized to the model's size
   * with antialiased bicubic interpolation (as the published code does), restored, and
   * resized back to its own size.
   */
  async restoreDecoded(faces: readonly DecodedImage[], options: RestoreFacesOptions = {}): Promise<RestoredFace[]> {
    this.live();
    if (!Array.isArray(faces) || faces.length === 0) throw argumentError('restoreDecoded needs at least one decoded image');
    const { startStep, eta } = this.sampling(options);
    const seed = seedOf(options.seed);
    checkFunction(options.onStep, 'onStep');
    const signal = checkSignal(options.signal);
    const side = this.card.sampling.imageSize;
    const inputs = faces.map((face) => Tensor.fromFloat32(face.rgb, [1, 3, face.height, face.width]));
    try {
      const result = await this.#queue.submit({
        group: { faces: inputs.map((t) => Tensor.native(t, 'face')), seed, eta, estimates: options.estimates === true },
        faces: faces.length,
        key: `${side}x${side}@${startStep}`,
        side,
        startStep,
        onStep: progressOf(options.onStep),
        signal,
      });
      const restored = (result.restored ?? []).map((t) => Tensor.adopt(t));
      const estimates = (result.estimates ?? []).map((t) => Tensor.adopt(t));
      try {
        return await Promise.all(restored.map(async (tensor, i) => {
          const estimate = estimates[i];
          return { rgb: await tensor.toFloat32(), ...(estimate ? { estimate: await estimate.toFloat32() } : {}) };
        }));
      } finally {
        for (const t of [...restored, ...estimates]) t.dispose();
      }
    } finally {
      for (const t of inputs) t.dispose();
    }
  }

  /**
   * Restores one aligned face from a file path or a Buffer (PNG, JPEG, WebP, TIFF, AVIF;
   * 8 or 16 bits; grey, RGB, with or without alpha; EXIF orientation applied), at its own
   * size, encoded in the format asked for.
   */
  async restoreImage(input: ImageInput, options: RestoreImageOptions = {}): Promise<RestoredImage> {
    const [restored] = await this.restoreImages([input], { ...options, batchSize: 1 });
    return restored as RestoredImage;
  }

  /** Restores several aligned faces, several at a time through the networks. */
  async restoreImages(inputs: readonly ImageInput[], options: RestoreImagesOptions = {}): Promise<RestoredImage[]> {
    this.live();
    if (!Array.isArray(inputs) || inputs.length === 0) throw argumentError('restoreImages needs at least one input');
    const batchSize = options.batchSize ?? (this.device === 'cpu' ? 1 : 4);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw argumentError(`batchSize must be an integer of at least 1, got ${String(options.batchSize)}`);
    checkFunction(options.onImage, 'onImage');
    checkEncodeOptions(options);
    const decoded = await Promise.all(inputs.map((input) => decodeImage(input, { ...(options.maxPixels !== undefined ? { maxPixels: options.maxPixels } : {}) })));
    const seed = BigInt(seedOf(options.seed));
    const results: RestoredImage[] = [];
    for (let start = 0; start < decoded.length; start += batchSize) {
      const batch = decoded.slice(start, start + batchSize);
      const faces = await this.restoreDecoded(batch, { ...options, seed, estimates: options.compare === true });
      for (let i = 0; i < batch.length; i++) {
        results.push(await encodeRestored(batch[i] as DecodedImage, faces[i] as RestoredFace, options, seed));
      }
      options.onImage?.(results.length, decoded.length);
    }
    return results;
  }

  /** Antialiased bicubic resize of [B, C, h, w] to [B, C, height, width], as the published code resizes faces. */
  async resize(x: Tensor, size: readonly [number, number]): Promise<Tensor<'float32'>> {
    const engine = this.live();
    const input = Tensor.native(x, 'x');
    const [height, width] = Array.isArray(size) ? size : [NaN, NaN];
    if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
      throw argumentError('resize: size must be [height, width], two positive integers');
    }
    if (input.shape.length !== 4) throw argumentError('resize: x must have shape [batch, channels, height, width]');
    return this.call(() => engine.resize(input, height, width));
  }

  /**
   * Restores every face of an ordinary photo: finds the faces (dlib), aligns each to the
   * published 512 x 512 template, restores them as one batch, and pastes them back with a
   * feathered mask into the photo upscaled (by 2 unless told otherwise).
   */
  async restorePhoto(input: ImageInput, options: PhotoOptions & Omit<RestoreFacesOptions, 'estimates'> = {}): Promise<RestoredPhoto> {
    const engine = this.live();
    return restorePhotoWith(engine, input, options, async (crops) =>
      (await this.restoreDecoded(crops, options)).map((face) => face.rgb));
  }

  /**
   * Cuts an image [1, C, H, W] through an affine map of pixel coordinates (output pixel ->
   * image pixel, pixel centres at integers, as OpenCV's warpAffine), bilinear, with a
   * constant border colour (one value per channel) outside the image.
   */
  async warpAffine(image: Tensor, outToImage: readonly number[], size: readonly [number, number],
    border: readonly number[]): Promise<Tensor<'float32'>> {
    const engine = this.live();
    const input = Tensor.native(image, 'image');
    if (!Array.isArray(outToImage) || outToImage.length !== 6) throw argumentError('warpAffine: outToImage must hold 6 numbers');
    return this.call(() => engine.warpAffine(input, outToImage, size[0], size[1], border));
  }

  /**
   * Pastes faces [1, 3, S, S] into a canvas [1, 3, H, W]: each through its map (canvas pixel
   * -> face pixel), under a mask that covers the face's square, eroded and blurred in
   * proportion to the face's size. `scale` is the canvas's scale to the photo the faces came from.
   */
  async pasteFaces(canvas: Tensor, faces: readonly Tensor[], canvasToFace: readonly (readonly number[])[],
    scale: number): Promise<Tensor<'float32'>> {
    const engine = this.live();
    const target = this.faces(canvas, 'canvas');
    if (faces.length !== canvasToFace.length) throw argumentError('pasteFaces: one map per face');
    return this.call(() => engine.pasteFaces(target, faces.map((f) => Tensor.native(f, 'face')), [...canvasToFace], scale));
  }

  /** The device allocator's bytes in use now and at peak (CUDA; zeros on the CPU). */
  memory(): { currentBytes: number; peakBytes: number } {
    return this.live().memory();
  }

  /** Starts a new peak for memory(). */
  resetPeakMemory(): void {
    this.live().resetPeakMemory();
  }

  /**
   * Frees the networks. Calls running now stop at their next step and reject with an
   * AbortError; later calls throw EDISPOSED. Calling it again does nothing.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#queue.close();
    this.#engine.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private live(): NativeEngine {
    if (this.#disposed) throw new DifFaceError('EDISPOSED', 'this engine was disposed; load a new one with DifFace.load()');
    return this.#engine;
  }

  private faces(tensor: Tensor, what: string) {
    const handle = Tensor.native(tensor, what);
    const shape = handle.shape;
    if (shape.length !== 4 || shape[1] !== 3 || shape[0] === 0) {
      throw argumentError(`${what} must have shape [batch, 3, height, width] with batch >= 1, got [${shape.join(', ')}]`);
    }
    return handle;
  }

  private sampling(options: { startStep?: number | undefined; eta?: number | undefined }): { startStep: number; eta: number } {
    return { startStep: this.startStep(options.startStep), eta: this.eta(options.eta) };
  }

  private startStep(value: number | undefined): number {
    const startStep = value ?? this.card.sampling.startStep;
    const last = this.live().timesteps.length - 1;
    if (!Number.isInteger(startStep) || startStep < 1 || startStep > last) {
      throw argumentError(`startStep must be an integer from 1 to ${last}, got ${String(value)}`);
    }
    return startStep;
  }

  private eta(value: number | undefined): number {
    const eta = value ?? this.card.sampling.eta;
    if (typeof eta !== 'number' || !(eta >= 0 && eta <= 1)) {
      throw argumentError(`eta must be a number from 0 to 1, got ${String(value)}`);
    }
    return eta;
  }

  private generatorOf(options: { generator?: unknown } | undefined): NativeGenerator {
    const generator = options?.generator;
    if (!(generator instanceof Generator)) {
      throw argumentError('generator must be a Generator made with engine.generator(seed)');
    }
    return generator.handle;
  }

  private async call(run: () => Promise<NativeTensor>, reporter?: StepReporter): Promise<Tensor<'float32'>> {
    try {
      return Tensor.adopt(await run()) as Tensor<'float32'>;
    } catch (error) {
      throw this.failure(error, reporter);
    }
  }

  /** What a failed native call rejects with: the user's own error when onStep threw it. */
  private failure(error: unknown, reporter?: StepReporter): unknown {
    if (reporter?.thrown !== undefined) return reporter.thrown.value;
    const failure = fromNative(error);
    if (failure.code === 'EABORT' && this.#disposed) {
      return new AbortError('the engine was disposed while this call was running', { cause: error });
    }
    return failure;
  }

  private async withSignal<T>(signal: AbortSignal | undefined,
    run: (token: NativeCancelToken | undefined) => Promise<T>): Promise<T> {
    if (signal === undefined) return run(undefined);
    if (signal.aborted) throw abortReason(signal);
    const token = new (native().NativeCancelToken)();
    const onAbort = (): void => token.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await run(token);
    } catch (error) {
      if (error instanceof AbortError && signal.aborted) throw abortReason(signal);
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/** Adapts a user's onStep for the native layer, and remembers what it threw. */
class StepReporter {
  thrown: { value: unknown } | undefined;

  constructor(private readonly onStep: ((progress: StepProgress) => void) | undefined) {}

  get callback(): ((step: number, total: number, timestep: number) => void) | undefined {
    const onStep = this.onStep;
    if (onStep === undefined) return undefined;
    return (step, total, timestep) => {
      try {
        onStep({ step, total, timestep });
      } catch (error) {
        this.thrown ??= { value: error };
        throw error;
      }
    };
  }
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

/** Adapts a user's onStep to the queue's (step, total, timestep) callback. */
function progressOf(onStep: ((progress: StepProgress) => void) | undefined) {
  if (onStep === undefined) return undefined;
  return (step: number, total: number, timestep: number): void => onStep({ step, total, timestep });
}

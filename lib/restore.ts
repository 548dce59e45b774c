/**
 * restore(): the whole method on faces. The backbone's estimate, the transition to step N
 * and the reverse loop, with one generator seeded once, so that with the same seed it makes
 * the published sampler's random draws in the published order. Calls go through the
 * engine's queue, which runs concurrent calls of the same size together; each call draws
 * its noise from its own generator, in the layout it would have alone, so sharing a batch
 * changes nothing but the rounding of the shared UNet calls.
 */
import { randomInt } from 'node:crypto';

import { CallControl, OnStep } from './call';
import { EngineCore, SamplingOptions } from './core';
import { DecodedImage } from './image';
import { NativeRequestResult, NativeTensor, native } from './native';
import { Tensor } from './tensor';
import * as is from './validate';

export interface RestoreOptions extends SamplingOptions {
  /** Seeds the one generator of this call, as torch.manual_seed(seed). Default: random. */
  seed?: number | bigint;
  onStep?: OnStep;
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

export interface RestoreFacesOptions extends SamplingOptions {
  /** Seeds the batch's one generator. Default: random. */
  seed?: number | bigint;
  onStep?: OnStep;
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

/** A fresh seed when the caller gave none: below 2^47, so it prints and parses as a plain number. */
export function randomSeed(): number {
  return randomInt(0, 2 ** 47);
}

export function seedOf(seed: unknown): number | bigint {
  return seed === undefined ? randomSeed() : is.seed(seed);
}

interface Submission {
  faces: NativeTensor[];
  count: number;
  height: number;
  width: number;
  options: RestoreOptions & RestoreFacesOptions;
  seed: number | bigint;
  estimates: boolean;
}

/**
 * Queues faces through the engine. The native request takes the faces when it is made, so
 * the caller may dispose its tensors as soon as this returns its promise.
 */
async function submit(core: EngineCore, submission: Submission): Promise<NativeRequestResult> {
  core.live();
  core.requireTask('restoration', 'restore');
  const { startStep, eta } = core.sampling(submission.options);
  const control = new CallControl(submission.options.onStep, submission.options.signal);
  const request = new (native().NativeRequest)({
    faces: submission.faces, seed: submission.seed, eta, estimates: submission.estimates, cancel: control.token,
  });
  return core.queue.submit({
    request, faces: submission.count, height: submission.height, width: submission.width, startStep, control,
  });
}

export function restore(core: EngineCore, lq: Tensor, options?: RestoreOptions & { returnEstimate?: false }): Promise<Tensor<'float32'>>;
export function restore(core: EngineCore, lq: Tensor, options: RestoreOptions & { returnEstimate: true }): Promise<Restoration>;
export async function restore(core: EngineCore, lq: Tensor, options: RestoreOptions = {}): Promise<Tensor<'float32'> | Restoration> {
  const input = core.faces(lq, 'lq');
  const [count, , height, width] = input.shape as [number, number, number, number];
  const seed = seedOf(options.seed);
  const result = await submit(core, { faces: [input], count, height, width, options, seed, estimates: true });
  const restored = Tensor.adopt(result.restored[0] as NativeTensor) as Tensor<'float32'>;
  const estimate = Tensor.adopt(result.estimates[0] as NativeTensor) as Tensor<'float32'>;
  if (options.returnEstimate === true) return { restored, estimate, seed: BigInt(seed) };
  estimate.dispose();
  return restored;
}

/**
 * Faces of any sizes, decoded, restored as one batch: each is resized to the model's size
 * with antialiased bicubic interpolation (as the published code does), restored, and
 * resized back to its own size.
 */
export async function restoreFaces(core: EngineCore, faces: readonly DecodedImage[],
  options: RestoreFacesOptions = {}): Promise<RestoredFace[]> {
  if (!Array.isArray(faces) || faces.length === 0) throw is.invalidParameterError('faces', 'a non-empty array of decoded images', faces);
  const seed = seedOf(options.seed);
  const side = core.card.sampling.imageSize;
  const inputs = faces.map((face) => Tensor.fromFloat32(face.rgb, [1, 3, face.height, face.width]));
  const pending = submit(core, {
    faces: inputs.map((t) => Tensor.native(t, 'face')), count: faces.length, height: side, width: side, options, seed,
    estimates: options.estimates === true,
  });
  // The request took the faces when it was made.
  for (const t of inputs) t.dispose();
  return readResults(await pending);
}

/** A finished request's faces, and their estimates when it asked for them, as values; frees its tensors. */
export async function readResults(result: NativeRequestResult): Promise<{ rgb: Float32Array; estimate?: Float32Array }[]> {
  const faces = result.restored.map((t) => Tensor.adopt(t));
  const estimates = result.estimates.map((t) => Tensor.adopt(t));
  try {
    return await Promise.all(faces.map(async (tensor, i) => {
      const estimate = estimates[i];
      return { rgb: await tensor.toFloat32(), ...(estimate ? { estimate: await estimate.toFloat32() } : {}) };
    }));
  } finally {
    for (const t of [...faces, ...estimates]) t.dispose();
  }
}

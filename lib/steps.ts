/**
 * The method's pieces, one call each, on tensors: the backbone's estimate, the transition
 * to step N, one reverse step, the whole reverse loop, and the raw UNet.
 */
import { CallControl, OnStep } from './call';
import { EngineCore, SamplingOptions } from './core';
import { AbortError, fromNative } from './errors';
import { Generator } from './generator';
import { Tensor } from './tensor';
import * as is from './validate';

export interface TransitionOptions {
  /** Index N of the respaced chain to diffuse the estimate to. Default from the model card (100). */
  startStep?: number;
  generator: Generator;
}

interface StepBase {
  /** Respaced index i of x: the step moves it to i - 1 (the UNet is called at timesteps[i]). */
  index: number;
  /** DDIM eta in [0, 1]. Default from the model card (0.5). */
  eta?: number;
  /** Also resolve to the x̂₀ the step predicted (the caller then owns and disposes both). */
  returnPredicted?: boolean;
  /**
   * Inpainting: the known image y0 in [-1, 1] ([B, 3, H, W], as x) and its holes ([B, 1, H, W],
   * 1 where missing). x̂₀ is then clipped, pulled towards y0 outside the holes by one step of
   * the masking regularizer with weight gamma (default from the model card, 0.5), and
   * clipped again, as the published inpainting sampler does.
   */
  known?: { y0: Tensor; holes: Tensor; gamma?: number };
}

/**
 * The step's noise z comes from `generator` (drawn like x, as the published sampler draws it)
 * or is given as `noise`, a tensor of x's shape: then exact draws can be fed in.
 */
export type StepOptions = StepBase & ({ generator: Generator; noise?: undefined } | { noise: Tensor; generator?: undefined });

/** What step() resolves to with `returnPredicted: true`. */
export interface StepResult {
  /** x_{i-1}. */
  previous: Tensor<'float32'>;
  /** x̂₀ predicted at this step, clamped to [-1, 1]. */
  predictedX0: Tensor<'float32'>;
}

export interface ReverseOptions extends SamplingOptions {
  generator: Generator;
  /** Called on the main thread after each step. Throwing from it stops the call with that error. */
  onStep?: OnStep;
  /** Stops the call between two steps; it then rejects with an AbortError. */
  signal?: AbortSignal;
}

export async function unet(core: EngineCore, x: Tensor, t: readonly number[]): Promise<Tensor<'float32'>> {
  const engine = core.live();
  const input = Tensor.native(x, 'x');
  if (!Array.isArray(t) || !t.every((v) => typeof v === 'number' && Number.isFinite(v)) || t.length !== input.shape[0]) {
    throw is.invalidParameterError('t', `an array of ${String(input.shape[0])} finite timesteps, one per batch item of x`, t);
  }
  return core.run(() => engine.unet(input, t));
}

export async function estimate(core: EngineCore, lq: Tensor): Promise<Tensor<'float32'>> {
  const engine = core.live();
  // The inpainting estimator takes the face with its holes at 0 and the hole mask after it.
  const input = core.faces(lq, 'lq', core.card.task === 'inpainting' ? 4 : 3);
  return core.run(() => engine.estimate(input));
}

export async function transition(core: EngineCore, estimated: Tensor, options: TransitionOptions): Promise<Tensor<'float32'>> {
  const engine = core.live();
  const input = core.faces(estimated, 'estimate');
  const { startStep } = core.sampling(options ?? {});
  const generator = Generator.handleOf(options?.generator);
  return core.run(() => engine.transition(input, startStep, generator));
}

export async function step(core: EngineCore, x: Tensor, options: StepOptions): Promise<StepResult> {
  const engine = core.live();
  const input = core.faces(x, 'x');
  const index = is.stepIndex(options?.index, core.lastIndex);
  const eta = is.eta(options.eta ?? core.card.sampling.eta);
  const noise = options.noise === undefined ? undefined : Tensor.native(options.noise, 'noise');
  const generator = noise === undefined || options.generator !== undefined ? Generator.handleOf(options.generator) : undefined;
  const known = options.known === undefined ? undefined : {
    y0: core.faces(options.known.y0, 'known.y0'),
    holes: core.faces(options.known.holes, 'known.holes', 1),
    gamma: is.gamma(options.known.gamma ?? core.card.sampling.gamma ?? 0.5, 'known.gamma'),
  };
  try {
    const { previous, predictedX0 } = await engine.step(input, index, eta, generator, noise, known);
    return { previous: Tensor.adopt(previous) as Tensor<'float32'>, predictedX0: Tensor.adopt(predictedX0) as Tensor<'float32'> };
  } catch (error) {
    throw fromNative(error);
  }
}

export async function reverse(core: EngineCore, xN: Tensor, options: ReverseOptions): Promise<Tensor<'float32'>> {
  const engine = core.live();
  const input = core.faces(xN, 'xN');
  const { startStep, eta } = core.sampling(options ?? {});
  const generator = Generator.handleOf(options?.generator);
  const control = new CallControl(options.onStep, options.signal);
  if (control.aborted) throw control.failure(new AbortError());
  control.attach();
  try {
    return await core.run(() => engine.reverse(input, startStep, eta, generator, control.progress, control.token), control);
  } finally {
    control.detach();
  }
}

export async function resize(core: EngineCore, x: Tensor, size: readonly [number, number]): Promise<Tensor<'float32'>> {
  const engine = core.live();
  const input = Tensor.native(x, 'x');
  const [height, width] = Array.isArray(size) ? size : [NaN, NaN];
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw is.invalidParameterError('size', '[height, width], two positive integers', size);
  }
  if (input.shape.length !== 4) throw is.invalidParameterError('x', 'a tensor of shape [batch, channels, height, width]', input.shape);
  return core.run(() => engine.resize(input, height, width));
}

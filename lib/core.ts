/**
 * What every part of the engine's API shares: the native engine, its model card,
 * its queue, and the checks every call makes (the engine is alive, tensors have the shape
 * of faces, sampling options fall back to the model card's defaults).
 */
import { CallControl } from './call';
import { DifFaceError, argumentError, fromNative } from './errors';
import { ModelCard, Task } from './modelcard';
import { NativeEngine, NativeTensor } from './native';
import { BatchQueue } from './queue';
import { Tensor } from './tensor';
import * as is from './validate';

export interface SamplingOptions {
  /** Index N of the respaced chain the estimate is diffused to. Default from the model card (100). */
  startStep?: number;
  /** DDIM eta in [0, 1]: 0 is deterministic. Default from the model card (0.5). */
  eta?: number;
}

/** Not part of the public API (index.ts does not export it): the parts of DifFace share it. */
export class EngineCore {
  #disposed = false;

  constructor(readonly modelDir: string, readonly card: ModelCard, private readonly engine: NativeEngine,
    readonly queue: BatchQueue) {}

  get disposed(): boolean {
    return this.#disposed;
  }

  /** The native engine, or EDISPOSED once disposed. */
  live(): NativeEngine {
    if (this.#disposed) throw new DifFaceError('EDISPOSED', 'this engine was disposed; load a new one with DifFace.load()');
    return this.engine;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.queue.close();
    this.engine.dispose();
  }

  /** The last index of the respaced chain. */
  get lastIndex(): number {
    return this.live().timesteps.length - 1;
  }

  /** Start step and eta, from the options or the model card. */
  sampling(options: SamplingOptions): { startStep: number; eta: number } {
    return {
      startStep: is.startStep(options.startStep ?? this.card.sampling.startStep, this.lastIndex),
      eta: is.eta(options.eta ?? this.card.sampling.eta),
    };
  }

  /** Throws EARG when this engine's networks are not for `task`, saying which model directory is. */
  requireTask(task: Task, call: string): void {
    if (this.card.task === task) return;
    const advice = task === 'inpainting'
      ? "load an inpainting model directory (made by 'difface models fetch --only inpainting', or 'difface convert' with an inpainting configuration)"
      : 'load a restoration model directory';
    throw argumentError(`${call} needs networks for ${task}, but '${this.modelDir}' holds networks for ${this.card.task}; ${advice}`);
  }

  /** A tensor of faces, [batch >= 1, 3, height, width] (or another number of channels). */
  faces(tensor: Tensor, name: string, channels = 3): NativeTensor {
    const handle = Tensor.native(tensor, name);
    const shape = handle.shape;
    if (shape.length !== 4 || shape[1] !== channels || shape[0] === 0) {
      throw is.invalidParameterError(name, `a tensor of shape [batch >= 1, ${channels}, height, width]`, shape);
    }
    return handle;
  }

  /** Runs one native call that resolves to a tensor; its failure becomes a DifFaceError (or what control says). */
  async run(call: () => Promise<NativeTensor>, control?: CallControl): Promise<Tensor<'float32'>> {
    try {
      return Tensor.adopt(await call()) as Tensor<'float32'>;
    } catch (error) {
      throw control === undefined ? fromNative(error) : control.failure(error, this.#disposed);
    }
  }
}

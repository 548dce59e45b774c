/**
 * Typed handles to native tensors. A tensor owns native (host or device) memory: free it
 * with `dispose()` or a `using` declaration. The garbage collector frees a handle that was
 * dropped without it, but device memory should never be left to the collector.
 */
import { DifFaceError, argumentError, fromNative } from './errors';
import { NativeTensor, native } from './native';

import type { DType } from './validate';

/** Element types a tensor can hold. */
export type { DType };

/** Live tensor handles of this process and the bytes they hold. */
export interface TensorStats {
  count: number;
  bytes: number;
  /** Tensors freed by the garbage collector because nobody disposed them. */
  collected: number;
}

const handles = new WeakMap<Tensor, NativeTensor>();

// The safety net: a tensor the garbage collector takes without dispose() frees its native
// memory here (and is counted), instead of whenever the native wrapper is collected.
let collected = 0;
const forgotten = new FinalizationRegistry<NativeTensor>((handle) => {
  if (!handle.disposed) {
    collected++;
    handle.dispose();
  }
});

export class Tensor<D extends DType = DType, S extends readonly number[] = readonly number[]> {
  /** Copies `data` into a new float32 tensor of the given shape (on the CPU). */
  static fromFloat32<const S extends readonly number[]>(data: Float32Array, shape: S): Tensor<'float32', S> {
    if (!(data instanceof Float32Array)) throw argumentError('Tensor.fromFloat32: data must be a Float32Array');
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw argumentError('Tensor.fromFloat32: shape must be an array of non-negative integers');
    }
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    if (count !== data.length) {
      throw argumentError(`Tensor.fromFloat32: data holds ${data.length} values but shape [${shape.join(', ')}] needs ${count}`);
    }
    return Tensor.adopt(native().NativeTensor.fromFloat32(data, shape)) as Tensor<'float32', S>;
  }

  /** Live tensor handles of this process and the bytes they hold. */
  static stats(): TensorStats {
    return { ...native().tensorStats(), collected };
  }

  /** @internal Wraps a native tensor; not for users. */
  static adopt(handle: NativeTensor): Tensor {
    return new Tensor(handle);
  }

  private constructor(handle: NativeTensor) {
    handles.set(this, handle);
    forgotten.register(this, handle, this);
  }

  /** The size of each dimension. */
  get shape(): S {
    return this.live('shape').shape as unknown as S;
  }

  get dtype(): D {
    return this.live('dtype').dtype as D;
  }

  /** 'cpu', or 'cuda:N' for a tensor on a GPU. */
  get device(): string {
    return this.live('device').device;
  }

  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a: number, b: number) => a * b, 1);
  }

  get disposed(): boolean {
    const handle = handles.get(this);
    return handle === undefined || handle.disposed;
  }

  /** Copies the values to a new Float32Array, in row-major order. */
  async toFloat32(): Promise<Float32Array> {
    const handle = this.live('toFloat32');
    try {
      return await handle.toFloat32();
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** Frees the tensor's memory. Calling it again does nothing. */
  dispose(): void {
    handles.get(this)?.dispose();
    forgotten.unregister(this);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal The native tensor behind the handle, for the engine. */
  static native(tensor: Tensor, what: string): NativeTensor {
    if (!(tensor instanceof Tensor)) throw argumentError(`${what} must be a Tensor`);
    return tensor.live(what);
  }

  private live(what: string): NativeTensor {
    const handle = handles.get(this);
    if (handle === undefined || handle.disposed) {
      throw new DifFaceError('EDISPOSED', `${what}: this tensor was disposed and cannot be used any more`);
    }
    return handle;
  }

  get [Symbol.toStringTag](): string {
    return 'Tensor';
  }
}

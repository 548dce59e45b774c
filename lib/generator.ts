/** Seeded random generators of an engine's device. */
import { fromNative } from './errors';
import { NativeGenerator } from './native';
import { Tensor } from './tensor';
import { invalidParameterError } from './validate';

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
      throw invalidParameterError('shape', 'an array of non-negative integers', shape);
    }
    try {
      return Tensor.adopt(await this.handle.randn(shape)) as Tensor<'float32', S>;
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** @internal The native generator behind `value`, or EARG naming the option. */
  static handleOf(value: unknown, name = 'generator'): NativeGenerator {
    if (!(value instanceof Generator)) throw invalidParameterError(name, 'a Generator made with engine.generator(seed)', value);
    return value.handle;
  }
}

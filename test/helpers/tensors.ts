// Moving values between tensors and plain arrays in the tests.
import { Tensor } from 'difface';

import type { Array32 } from './npy';

export function toTensor(array: Array32): Tensor<'float32'> {
  return Tensor.fromFloat32(array.data, array.shape);
}

/** The tensor's values; the tensor is disposed even when reading fails. */
export async function valuesOf(t: Tensor | Promise<Tensor>): Promise<Float32Array> {
  const tensor = await t;
  try {
    return await tensor.toFloat32();
  } finally {
    tensor.dispose();
  }
}

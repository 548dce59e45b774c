// Deliberate misuses: each must fail to type-check (an unused @ts-expect-error fails tsc).
import { DifFace, Tensor, fetchModels, readCheckpoint } from 'difface';

export async function misuses(engine: DifFace, lq: Tensor<'float32'>): Promise<void> {
  // @ts-expect-error: there is no 'gpu' device; it is 'cuda' or 'cuda:N'
  await DifFace.load('models', { device: 'gpu' });
  // @ts-expect-error: dtypes are float32, float16 or bfloat16
  await DifFace.load('models', { dtype: 'int8' });
  // @ts-expect-error: transition needs a generator
  await engine.transition(lq, { startStep: 100 });
  // @ts-expect-error: the seed is a number or a bigint
  await engine.restore(lq, { seed: '1' });
  // @ts-expect-error: restore without returnEstimate resolves to a tensor, not a Restoration
  const restoration: { estimate: Tensor } = await engine.restore(lq);
  // @ts-expect-error: output formats are png, jpeg and webp
  await engine.restoreImage('face.png', { format: 'gif' });
  // @ts-expect-error: the upscale is a number, not a string
  await engine.restorePhoto('group.jpg', { upscale: '2' });
  // @ts-expect-error: a face's box has four numbers, not a fifth
  (await engine.restorePhoto('group.jpg')).faces[0]?.box[4].toFixed();
  // @ts-expect-error: fromFloat32 takes a Float32Array
  Tensor.fromFloat32([1, 2, 3], [3]);
  // @ts-expect-error: a tensor's shape is read-only
  lq.shape[0] = 2;
  // @ts-expect-error: the fetch time-out is in milliseconds, a number
  await fetchModels({ timeoutMs: '30s' });
  // @ts-expect-error: unwrap lists keys
  await readCheckpoint('x.pth', { unwrap: 'state_dict' });
  void restoration;
}

/**
 * The published paste mask's face part: ParseNet labels each pixel of a restored face, and
 * the face's labels, blurred wide, keep hair, neck and hat edges from taking the restored
 * skin. The arithmetic is the engine's (cpp/face_parsing.cpp).
 */
import { PhotoNetworks } from './photo-networks';
import { Tensor } from './tensor';

/** ParseNet's scores of its 19 labels for faces [N, 3, H, W] in [0, 1]: [N, 19, 512, 512], in float32 as published. */
export async function parseFaces(networks: PhotoNetworks, faces: Tensor): Promise<Tensor<'float32'>> {
  const input = networks.core.faces(faces, 'faces');
  await networks.load('parser');
  const engine = networks.core.live();
  return networks.core.run(() => engine.parseFaces(input));
}

/**
 * Label scores [N, 19, S, S] as the published paste masks [N, 1, S, S] in [0, 1]: labels 1-13
 * and 15 are face, two 101 x 101 Gaussian blurs with sigma 11, the outer 10 pixels zero.
 */
export async function faceMasks(networks: PhotoNetworks, scores: Tensor): Promise<Tensor<'float32'>> {
  const engine = networks.core.live();
  const input = Tensor.native(scores, 'scores');
  return networks.core.run(() => engine.faceMasks(input));
}

/** Each face [1, 3, S, S] (S = 512) parsed and made into its paste mask [1, 1, S, S], one after another. */
export async function pasteMasks(networks: PhotoNetworks, faces: readonly Tensor[]): Promise<Tensor<'float32'>[]> {
  const masks: Tensor<'float32'>[] = [];
  try {
    for (const face of faces) {
      using scores = await parseFaces(networks, face);
      masks.push(await faceMasks(networks, scores));
    }
  } catch (error) {
    for (const mask of masks) mask.dispose();
    throw error;
  }
  return masks;
}

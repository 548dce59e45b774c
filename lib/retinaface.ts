/**
 * Faces found by RetinaFace (ResNet-50), as the published whole-photo chain finds them; the
 * arithmetic is the engine's (cpp/retinaface.cpp). Each face's numbers are as the published
 * helper leaves them, its score divided by the detection's enlargement too.
 */
import type { FoundFace } from './faces';
import { PhotoNetworks } from './photo-networks';
import { Tensor } from './tensor';

/** Rows of x1 y1 x2 y2 score and five (x, y) points, as faces. */
export function facesOfRows(rows: Float32Array): FoundFace[] {
  const faces: FoundFace[] = [];
  for (let r = 0; r + 15 <= rows.length; r += 15) {
    const row = Array.from(rows.subarray(r, r + 15));
    faces.push({
      box: [row[0], row[1], row[2], row[3]] as [number, number, number, number],
      score: row[4] as number,
      points: [0, 1, 2, 3, 4].map((k) => [row[5 + 2 * k] as number, row[6 + 2 * k] as number] as [number, number]),
    });
  }
  return faces;
}

/** The faces RetinaFace finds in a photo [1, 3, H, W] in [0, 1], best first. */
export async function detectFaces(networks: PhotoNetworks, image: Tensor): Promise<FoundFace[]> {
  const input = networks.core.faces(image, 'image');
  await networks.load('detector');
  const engine = networks.core.live();
  using rows = await networks.core.run(() => engine.detectFaces(input));
  return facesOfRows(await rows.toFloat32());
}

/**
 * The detector's post-processing alone, on given network outputs for an image of height x
 * width enlarged `scale` times: prior boxes, decoding, threshold 0.8, NMS 0.4, the division
 * by `scale` and the eye-distance filter, as published.
 */
export async function decodeDetections(networks: PhotoNetworks, outputs: { loc: Tensor; conf: Tensor; landmarks: Tensor },
  height: number, width: number, scale: number): Promise<FoundFace[]> {
  const engine = networks.core.live();
  const [loc, conf, landmarks] = [outputs.loc, outputs.conf, outputs.landmarks].map((t) => Tensor.native(t, 'outputs'));
  using rows = await networks.core.run(() => engine.decodeDetections(loc!, conf!, landmarks!, height, width, scale));
  return facesOfRows(await rows.toFloat32());
}

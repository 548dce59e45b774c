/**
 * Two things the published whole-photo helper does that a careful tool would not, kept for
 * `publishedQuirks` so that its outputs can be matched size for size and pixel for pixel:
 * photos whose short side is under 512 are enlarged to 512 before anything else, and the
 * restored faces are pasted back half an output pixel off (the helper shifts its scaled
 * inverse maps by upscale / 2, where pixel centres need (upscale - 1) / 2).
 */
import type { Affine } from './photo';

/** The short side the helper enlarges smaller photos to. */
export const PUBLISHED_SHORT_SIDE = 512;

/** Rounding to the nearest integer, ties to even, as OpenCV rounds a size. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * Source taps of OpenCV's bilinear resize along one axis of `size` pixels enlarged by
 * `factor`: output pixel i reads (i + 0.5) / factor - 0.5 (in float32, as OpenCV computes
 * it), held inside the row at both ends.
 */
function taps(outSize: number, size: number, factor: number): { first: Int32Array; weight: Float64Array } {
  const first = new Int32Array(outSize);
  const weight = new Float64Array(outSize);
  const step = 1 / factor;
  for (let i = 0; i < outSize; i++) {
    const at = Math.fround((i + 0.5) * step - 0.5);
    let left = Math.floor(at);
    let fraction = at - left;
    if (left < 0) {
      left = 0;
      fraction = 0;
    }
    if (left >= size - 1) {
      left = size - 1;
      fraction = 0;
    }
    first[i] = left;
    weight[i] = fraction;
  }
  return { first, weight };
}

/**
 * The photo as the helper reads it: when its short side is under 512, enlarged by 512 /
 * short side (bilinear, OpenCV's sampling, each side's length rounded), else as it is.
 */
export function enlargeSmallPhoto(photo: { rgb: Buffer; width: number; height: number }): { rgb: Buffer; width: number; height: number } {
  const short = Math.min(photo.width, photo.height);
  if (short >= PUBLISHED_SHORT_SIDE) return photo;
  const factor = PUBLISHED_SHORT_SIDE / short;
  const width = roundHalfEven(photo.width * factor);
  const height = roundHalfEven(photo.height * factor);
  const xs = taps(width, photo.width, factor);
  const ys = taps(height, photo.height, factor);
  const rgb = Buffer.alloc(width * height * 3);
  const at = (x: number, y: number, c: number) => photo.rgb[(y * photo.width + x) * 3 + c] as number;
  for (let y = 0; y < height; y++) {
    const y0 = ys.first[y] as number;
    const y1 = Math.min(y0 + 1, photo.height - 1);
    const wy = ys.weight[y] as number;
    for (let x = 0; x < width; x++) {
      const x0 = xs.first[x] as number;
      const x1 = Math.min(x0 + 1, photo.width - 1);
      const wx = xs.weight[x] as number;
      for (let c = 0; c < 3; c++) {
        const top = at(x0, y0, c) * (1 - wx) + at(x1, y0, c) * wx;
        const bottom = at(x0, y1, c) * (1 - wx) + at(x1, y1, c) * wx;
        rgb[(y * width + x) * 3 + c] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
  return { rgb, width, height };
}

/**
 * An output pixel's place in the photo's pixels for an output `upscale` times the photo:
 * where its centre falls, or, as the helper pastes, half an output pixel further (its
 * inverse maps scaled by `upscale` are shifted by upscale / 2 when upscale > 1).
 */
export function outputToPhoto(upscale: number, publishedShift: boolean): Affine {
  const shift = publishedShift ? (upscale > 1 ? -0.5 : 0) : 0.5 / upscale - 0.5;
  return [1 / upscale, 0, shift, 0, 1 / upscale, shift];
}

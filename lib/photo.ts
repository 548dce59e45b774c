/**
 * Whole photos: every face found, aligned to the published 512 x 512 template, restored,
 * and pasted back with a feathered mask into the photo upscaled.
 */
import sharp from 'sharp';

import { DifFaceError } from './errors';
import { FoundFace, findFaces, lmedsSimilarity } from './faces';
import {
  DEFAULT_MAX_PIXELS, DecodedImage, ImageInput, OutputFormat, checkEncodeOptions, defaultOutputFormat, encodeImage, probeImage,
  undecodable,
} from './image';
import { TileProgress, UpscaleBackgroundOptions } from './background';
import { enlargeSmallPhoto, outputToPhoto } from './published-quirks';
import { RestoreFacesOptions, RestoredFace } from './restore';
import { Tensor } from './tensor';
import * as is from './validate';

/** The published 512 x 512 alignment template: eyes, nose tip, mouth corners. */
export const FACE_TEMPLATE: readonly [number, number][] = [
  [192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043], [313.08905, 371.15118],
];
export const CROP_SIZE = 512;
/** What the crop shows beyond the photo's edge, as the published tool fills it: (135, 133, 132) given to OpenCV in BGR order. */
const BORDER = [132 / 255, 133 / 255, 135 / 255];

/** A map of pixel coordinates: x' = a x + b y + c, y' = d x + e y + f (pixel centres at integers, as OpenCV). */
export type Affine = [number, number, number, number, number, number];

/** The least-squares similarity transform (rotation, uniform scale, shift) taking from to to. */
export function similarity(from: readonly [number, number][], to: readonly [number, number][]): Affine {
  const n = from.length;
  const mean = (points: readonly [number, number][]) =>
    points.reduce(([sx, sy], [x, y]) => [sx + x / n, sy + y / n], [0, 0]);
  const [fx, fy] = mean(from);
  const [tx, ty] = mean(to);
  let dot = 0;
  let cross = 0;
  let norm = 0;
  for (let i = 0; i < n; i++) {
    const [x, y] = [(from[i] as [number, number])[0] - fx, (from[i] as [number, number])[1] - fy];
    const [u, v] = [(to[i] as [number, number])[0] - tx, (to[i] as [number, number])[1] - ty];
    dot += x * u + y * v;
    cross += x * v - y * u;
    norm += x * x + y * y;
  }
  const a = dot / norm;
  const b = cross / norm;
  return [a, -b, tx - (a * fx - b * fy), b, a, ty - (b * fx + a * fy)];
}

export type AlignmentKind = 'lmeds' | 'least-squares';

/**
 * A face's alignment onto the template: OpenCV's LMEDS fit as published where the whole-photo
 * module has it, else (or when LMEDS finds none) the least-squares similarity, which agrees
 * with LMEDS on ordinary faces.
 */
export function alignFace(points: readonly [number, number][]): { map: Affine; kind: AlignmentKind } {
  const lmeds = lmedsSimilarity(points, FACE_TEMPLATE);
  if (lmeds !== undefined) return { map: lmeds as Affine, kind: 'lmeds' };
  return { map: similarity(points, FACE_TEMPLATE), kind: 'least-squares' };
}

export function invert([a, b, c, d, e, f]: Affine): Affine {
  const det = a * e - b * d;
  return [e / det, -b / det, (b * f - e * c) / det, -d / det, a / det, (d * c - a * f) / det];
}

/** first, then second. */
export function compose(second: Affine, first: Affine): Affine {
  const [a, b, c, d, e, f] = second;
  const [p, q, r, s, t, u] = first;
  return [a * p + b * s, a * q + b * t, a * r + b * u + c, d * p + e * s, d * q + e * t, d * r + e * u + f];
}

export interface PhotoOptions {
  /** The output's scale to the input. Default 2, as published. */
  upscale?: number;
  /** Restore only the face nearest the photo's centre. */
  onlyCenterFace?: boolean;
  /** Faces narrower than this, in input pixels, are left as they are. Default 0. */
  minFace?: number;
  /** Draw each restored face's box on the output. */
  drawBox?: boolean;
  /**
   * How the background is upscaled: 'realesrgan' (Real-ESRGAN x2plus, as published; needs
   * RealESRGAN_x2plus.pth in the model directory) or 'lanczos'. Default: 'realesrgan' when
   * its weights are there, else 'lanczos'; `info.background` says which ran.
   */
  background?: is.BackgroundKind;
  /**
   * How faces are found: 'retinaface' (as published; needs detection_Resnet50_Final.pth in
   * the model directory) or 'dlib'. Default: 'retinaface' when its weights are there, else
   * 'dlib'; `info.detector` says which ran.
   */
  detector?: is.DetectorKind;
  /**
   * The mask restored faces are pasted back under: 'parse' (as published: the face's
   * ParseNet labels, blurred, within the feathered square; needs parsing_parsenet.pth in the
   * model directory) or 'square' (the feathered square alone). Default: 'parse' when its
   * weights are there, else 'square'; `info.paste` says which ran.
   */
  paste?: is.PasteKind;
  /**
   * Reproduce the published tool's quirks (default false): the photo is read as OpenCV reads
   * it (its colour profile ignored, its alpha dropped rather than flattened onto white); a
   * photo whose short side is under 512 is enlarged to 512 first (so the output is `upscale`
   * times that, and boxes and points are in the enlarged photo's pixels); and faces are
   * pasted back half an output pixel right of and below where they belong.
   */
  publishedQuirks?: boolean;
  /** Progress of the Real-ESRGAN background, tile by tile. */
  onTile?: (progress: TileProgress) => void;
  format?: OutputFormat;
  quality?: number;
  maxPixels?: number;
}

export interface PhotoFace {
  /** [left, top, right, bottom] in the input's pixels. */
  box: [number, number, number, number];
  score: number;
  /** Eye centres, nose tip, mouth corners, in the input's pixels. */
  points: [number, number][];
  /** The alignment: input pixels to the 512 x 512 crop's pixels (a similarity; see `alignment`). */
  toCrop: Affine;
  /** How the alignment was fitted: OpenCV's LMEDS, as published, or least squares where OpenCV is not built in. */
  alignment: AlignmentKind;
  /** The restored aligned face, 512 x 512, as a PNG. */
  restored: Buffer;
}

export interface RestoredPhoto {
  image: Buffer;
  faces: PhotoFace[];
  info: {
    input: string; width: number; height: number; format: OutputFormat; inputFormat: string; upscale: number;
    /** Which path ran: the face finder, the paste mask and the background. */
    detector: is.DetectorKind; paste: is.PasteKind; background: is.BackgroundKind;
    /** Whether the published helper's quirks were reproduced (publishedQuirks). */
    publishedQuirks: boolean;
  };
}

/**
 * Decodes a photo to 8-bit sRGB, EXIF orientation applied and any alpha flattened onto white;
 * or, `asPublished`, as the published tool's OpenCV reads it: the embedded colour profile
 * ignored and the alpha dropped.
 */
export async function readPhoto(input: ImageInput, maxPixels: number, asPublished = false): Promise<{ name: string; rgb: Buffer; width: number; height: number; format: string }> {
  const { name, bytes, format } = await probeImage(input, maxPixels);
  try {
    const decoder = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error', ignoreIcc: asPublished }).rotate();
    const { data, info } = await (asPublished ? decoder : decoder.flatten({ background: '#ffffff' }))
      .toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return { name, rgb: data, width: info.width, height: info.height, format };
  } catch (error) {
    throw undecodable(name, error);
  }
}

function planes(rgb: Buffer | Uint8Array, count: number): Float32Array {
  const out = new Float32Array(3 * count);
  for (let p = 0; p < count; p++) for (let c = 0; c < 3; c++) out[c * count + p] = (rgb[3 * p + c] as number) / 255;
  return out;
}

export function pickFaces(faces: FoundFace[], width: number, height: number, options: PhotoOptions): FoundFace[] {
  const minFace = options.minFace ?? 0;
  let kept = faces.filter((face) => face.box[2] - face.box[0] >= minFace);
  if (options.onlyCenterFace === true && kept.length > 1) {
    const distance = (face: FoundFace) => Math.hypot((face.box[0] + face.box[2]) / 2 - width / 2, (face.box[1] + face.box[3]) / 2 - height / 2);
    kept = [kept.reduce((best, face) => (distance(face) < distance(best) ? face : best))];
  }
  return kept.sort((p, q) => p.box[0] - q.box[0]);
}

/** Each face's box, outlined in green, as an SVG the size of the output. */
function boxesOverlay(faces: readonly FoundFace[], width: number, height: number, upscale: number): Buffer {
  const rects = faces.map(({ box: [l, t, r, b] }) =>
    `<rect x="${l * upscale}" y="${t * upscale}" width="${(r - l) * upscale}" height="${(b - t) * upscale}" fill="none" stroke="#00ff00" stroke-width="${2 * upscale}"/>`);
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${rects.join('')}</svg>`);
}

export function checkPhotoOptions(options: PhotoOptions): void {
  is.upscale(options.upscale ?? 2);
  is.minFace(options.minFace ?? 0);
  if (options.background !== undefined) is.background(options.background);
  if (options.detector !== undefined) is.detector(options.detector);
  if (options.paste !== undefined) is.paste(options.paste);
  if (options.publishedQuirks !== undefined) is.boolean(options.publishedQuirks, 'publishedQuirks');
  is.optionalFunction(options.onTile, 'onTile');
  checkEncodeOptions(options);
}

/** What restorePhoto needs of an engine: its checked warping, pasting and restoring. */
export interface PhotoEngine {
  warpAffine(image: Tensor, outToImage: readonly number[], size: readonly [number, number], border: readonly number[]): Promise<Tensor<'float32'>>;
  pasteFaces(canvas: Tensor, faces: readonly Tensor[], canvasToFace: readonly (readonly number[])[], scale: number,
    parseMasks?: readonly Tensor[]): Promise<Tensor<'float32'>>;
  restoreDecoded(faces: readonly DecodedImage[], options: RestoreFacesOptions): Promise<RestoredFace[]>;
  readonly backgroundAvailable: boolean;
  readonly detectorAvailable: boolean;
  readonly parserAvailable: boolean;
  pasteMasks(faces: readonly Tensor[]): Promise<Tensor<'float32'>[]>;
  detectFaces(image: Tensor): Promise<FoundFace[]>;
  upscaleBackground(image: Tensor, options: UpscaleBackgroundOptions): Promise<Tensor<'float32'>>;
}

/** The photo upscaled with Lanczos, as the canvas the faces are pasted into. */
async function upscaledBackground(photo: { name: string; rgb: Buffer; width: number; height: number }, upscale: number): Promise<Buffer> {
  try {
    return await sharp(photo.rgb, { raw: { width: photo.width, height: photo.height, channels: 3 } })
      .resize(photo.width * upscale, photo.height * upscale, { kernel: 'lanczos3' }).raw().toBuffer();
  } catch (error) {
    throw new DifFaceError('EIMAGE', `${photo.name}: cannot be upscaled ${upscale} times (${(error as Error).message})`, { cause: error });
  }
}

/** 8-bit interleaved RGB from planes in [0, 1] that hold 8-bit levels already. */
function interleaved(planar: Float32Array, count: number): Buffer {
  const out = Buffer.alloc(3 * count);
  for (let p = 0; p < count; p++) for (let c = 0; c < 3; c++) out[3 * p + c] = Math.round((planar[c * count + p] as number) * 255);
  return out;
}

/**
 * The photo upscaled twice by Real-ESRGAN, then to `upscale` with Lanczos when that is not 2
 * (the published upsampler does the same, with OpenCV's Lanczos).
 */
async function networkBackground(engine: PhotoEngine, photo: { name: string; rgb: Buffer; width: number; height: number },
  upscale: number, options: PhotoOptions & { signal?: AbortSignal }): Promise<Buffer> {
  let doubled: Float32Array;
  {
    using source = Tensor.fromFloat32(planes(photo.rgb, photo.width * photo.height), [1, 3, photo.height, photo.width]);
    using result = await engine.upscaleBackground(source, {
      ...(options.onTile !== undefined ? { onTile: options.onTile } : {}), ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    doubled = await result.toFloat32();
  }
  const rgb = interleaved(doubled, 4 * photo.width * photo.height);
  if (upscale === 2) return rgb;
  return upscaledBackground({ ...photo, rgb, width: 2 * photo.width, height: 2 * photo.height }, upscale / 2);
}

/** Restores every face of a photo; see DifFace.restorePhoto. */
export async function restorePhoto(engine: PhotoEngine, input: ImageInput,
  options: PhotoOptions & Omit<RestoreFacesOptions, 'estimates'>): Promise<RestoredPhoto> {
  checkPhotoOptions(options);
  const upscale = options.upscale ?? 2;
  const quirks = options.publishedQuirks === true;
  const read = await readPhoto(input, options.maxPixels ?? DEFAULT_MAX_PIXELS, quirks);
  const photo = quirks ? { ...read, ...enlargeSmallPhoto(read) } : read;
  const detectorKind = options.detector ?? (engine.detectorAvailable ? 'retinaface' : 'dlib');
  const crops: DecodedImage[] = [];
  let faces: FoundFace[];
  let photoToCrop: Affine[];
  let alignments: AlignmentKind[];
  {
    using source = Tensor.fromFloat32(planes(photo.rgb, photo.width * photo.height), [1, 3, photo.height, photo.width]);
    const found = detectorKind === 'retinaface' ? await engine.detectFaces(source) : await findFaces(photo.rgb, photo.width, photo.height);
    faces = pickFaces(found, photo.width, photo.height, options);
    const aligned = faces.map((face) => alignFace(face.points));
    photoToCrop = aligned.map((a) => a.map);
    alignments = aligned.map((a) => a.kind);
    for (const [i, map] of photoToCrop.map(invert).entries()) {
      using crop = await engine.warpAffine(source, map, [CROP_SIZE, CROP_SIZE], BORDER);
      crops.push({ name: `${photo.name}#${i}`, width: CROP_SIZE, height: CROP_SIZE, rgb: await crop.toFloat32(), grey: false, depth: 8, format: 'png' });
    }
  }
  const restored = crops.length > 0 ? (await engine.restoreDecoded(crops, options)).map((face) => face.rgb) : [];

  const width = photo.width * upscale;
  const height = photo.height * upscale;
  const backgroundKind = options.background ?? (engine.backgroundAvailable ? 'realesrgan' : 'lanczos');
  const background = backgroundKind === 'realesrgan' ? await networkBackground(engine, photo, upscale, options)
    : await upscaledBackground(photo, upscale);
  // A canvas pixel in the photo's pixels; then into the crop.
  const canvasToFace = photoToCrop.map((map) => compose(map, outputToPhoto(upscale, quirks)));
  const pasteKind = options.paste ?? (engine.parserAvailable ? 'parse' : 'square');
  let pasted: Tensor;
  {
    using canvas = Tensor.fromFloat32(planes(background, width * height), [1, 3, height, width]);
    const faceTensors = restored.map((rgb) => Tensor.fromFloat32(rgb, [1, 3, CROP_SIZE, CROP_SIZE]));
    let masks: Tensor[] | undefined;
    try {
      if (pasteKind === 'parse' && faceTensors.length > 0) masks = await engine.pasteMasks(faceTensors);
      pasted = await engine.pasteFaces(canvas, faceTensors, canvasToFace, upscale, masks);
    } finally {
      for (const t of [...faceTensors, ...(masks ?? [])]) t.dispose();
    }
  }
  const format = options.format ?? defaultOutputFormat(photo.format);
  // Boxes are drawn over the pixels before the one encoding, so a lossy format is not encoded twice.
  const overlay = options.drawBox === true && faces.length > 0 ? boxesOverlay(faces, width, height, upscale) : undefined;
  let rgb: Float32Array;
  try {
    rgb = await pasted.toFloat32();
  } finally {
    pasted.dispose();
  }
  const image = await encodeImage({ width, height, rgb, grey: false, depth: 8 }, {
    format, ...(options.quality !== undefined ? { quality: options.quality } : {}), ...(overlay ? { overlay } : {}),
  });
  const faceImages = await Promise.all(restored.map((rgb) => encodeImage({ width: CROP_SIZE, height: CROP_SIZE, rgb, grey: false, depth: 8 }, { format: 'png' })));
  return {
    image,
    faces: faces.map((face, i) => ({ box: face.box, score: face.score, points: face.points, toCrop: photoToCrop[i] as Affine,
      alignment: alignments[i] as AlignmentKind,
      restored: faceImages[i] as Buffer })),
    info: { input: photo.name, width, height, format, inputFormat: photo.format, upscale, detector: detectorKind, paste: pasteKind,
      background: backgroundKind, publishedQuirks: quirks },
  };
}

/**
 * Finding faces in photos: the optional dlib module (binding/faces_addon.cc), its landmark
 * model, and the five points the published alignment uses.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFaceError } from './errors';
import { packageRoot } from './native';

/** Debian's libdlib-data installs the 68-point landmark model here; DIFFACE_LANDMARKS overrides it. */
export const DEFAULT_LANDMARK_MODEL = '/usr/share/dlib/shape_predictor_68_face_landmarks.dat';

export const INSTALL_DLIB = 'apt-get install libdlib-dev libdlib-data libblas-dev liblapack-dev libopencv-calib3d-dev, then ' +
  '`npm rebuild difface --build-from-source`';

interface RawFace {
  box: [number, number, number, number];
  score: number;
  landmarks: Float64Array;
}

interface Detector {
  detect(rgb: Buffer, width: number, height: number, upsample: number): Promise<RawFace[]>;
}

interface FacesModule {
  FaceDetector: new (landmarkModel: string) => Detector;
  /** Present where the module was built with OpenCV: its LMEDS similarity, or null when it finds none. */
  estimateSimilarity?: (from: Float64Array, to: Float64Array) => Float64Array | null;
}

/** A face found in a photo, in the photo's pixels. */
export interface FoundFace {
  /** [left, top, right, bottom]. */
  box: [number, number, number, number];
  score: number;
  /** Eye centres, nose tip and mouth corners, as the published alignment takes them. */
  points: [number, number][];
}

let detector: Detector | undefined;

function loadModule(): FacesModule {
  const candidates = [
    path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, 'faces', 'difface_faces.node'),
    path.join(packageRoot, 'build', 'faces', 'difface_faces.node'),
  ];
  const present = candidates.find((file) => fs.existsSync(file));
  if (present === undefined) {
    throw new DifFaceError('EDETECT', `whole photos need finding faces, which needs dlib, and this difface was built without it: ${INSTALL_DLIB}`);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(present) as FacesModule;
  } catch (error) {
    const missing = /(lib\S+\.so[\w.]*): cannot open shared object file/.exec((error as Error).message)?.[1];
    // A prebuilt module only lacks dlib's runtime; a rebuild is needed only when the library itself is another version.
    const fix = missing !== undefined && present.includes(`${path.sep}prebuilds${path.sep}`)
      ? 'apt-get install libdlib19.1 libblas3 liblapack3 libdlib-data libopencv-calib3d406' : INSTALL_DLIB;
    throw new DifFaceError('EDETECT', `the face-finding module cannot load${missing ? ` (${missing} is not installed)` : ''}: ${fix}`,
      { cause: error });
  }
}

function getDetector(): Detector {
  if (detector === undefined) {
    const model = process.env.DIFFACE_LANDMARKS || DEFAULT_LANDMARK_MODEL;
    if (!fs.existsSync(model)) {
      throw new DifFaceError('EDETECT', `the face landmark model ${model} is missing: apt-get install libdlib-data (or set DIFFACE_LANDMARKS)`);
    }
    const { FaceDetector } = loadModule();
    try {
      detector = new FaceDetector(model);
    } catch (error) {
      throw new DifFaceError('EDETECT', (error as Error).message, { cause: error });
    }
  }
  return detector;
}

let alignmentModule: FacesModule | null | undefined;

/**
 * The published alignment, OpenCV's estimateAffinePartial2D with LMEDS, taking `from` onto
 * `to` as [a, b, c, d, e, f]; undefined where the whole-photo module was built without OpenCV
 * (or cannot load), or when OpenCV finds no fit.
 */
export function lmedsSimilarity(from: readonly [number, number][], to: readonly [number, number][]): number[] | undefined {
  if (alignmentModule === undefined) {
    try {
      alignmentModule = loadModule();
    } catch {
      alignmentModule = null;
    }
  }
  const estimate = alignmentModule?.estimateSimilarity;
  if (estimate === undefined) return undefined;
  const fit = estimate(Float64Array.from(from.flat()), Float64Array.from(to.flat()));
  return fit === null ? undefined : Array.from(fit);
}

/** Whether faces are aligned with OpenCV's LMEDS fit here, as published, rather than by least squares. */
export function lmedsAvailable(): boolean {
  return lmedsSimilarity([[0, 0], [1, 0], [0, 1]], [[0, 0], [1, 0], [0, 1]]) !== undefined;
}

/** Whether whole-photo mode can run here; when not, why. */
export function faceFindingAvailable(): { available: boolean; reason?: string } {
  try {
    getDetector();
    return { available: true };
  } catch (error) {
    return { available: false, reason: (error as Error).message };
  }
}

function mean(points: Float64Array, from: number, to: number): [number, number] {
  let x = 0;
  let y = 0;
  for (let i = from; i <= to; i++) {
    x += points[2 * i] as number;
    y += points[2 * i + 1] as number;
  }
  return [x / (to - from + 1), y / (to - from + 1)];
}

/** The five points of the iBUG 68: the eyes' centres (36-41, 42-47), the nose tip (30), the mouth's corners (48, 54). */
function fivePoints(landmarks: Float64Array): [number, number][] {
  const point = (i: number): [number, number] => [landmarks[2 * i] as number, landmarks[2 * i + 1] as number];
  return [mean(landmarks, 36, 41), mean(landmarks, 42, 47), point(30), point(48), point(54)];
}

/**
 * Faces in an RGB photo (interleaved 8-bit). Small photos are searched at twice their size,
 * so faces down to about 40 pixels are found; when nothing is found, once more at twice that.
 */
export async function findFaces(rgb: Buffer, width: number, height: number): Promise<FoundFace[]> {
  const found = getDetector();
  let upsample = Math.max(width, height) <= 1600 ? 1 : 0;
  let faces = await detectWith(found, rgb, width, height, upsample);
  if (faces.length === 0 && upsample < 2 && Math.max(width, height) <= 1200) {
    upsample++;
    faces = await detectWith(found, rgb, width, height, upsample);
  }
  return faces.map((face) => ({ box: face.box, score: face.score, points: fivePoints(face.landmarks) }));
}

/** Runs the detector; its failures are EDETECT errors like every other failure to find faces. */
async function detectWith(found: Detector, rgb: Buffer, width: number, height: number, upsample: number): Promise<RawFace[]> {
  try {
    return await found.detect(rgb, width, height, upsample);
  } catch (error) {
    throw new DifFaceError('EDETECT', `finding faces failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
}

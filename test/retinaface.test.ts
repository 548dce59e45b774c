// RetinaFace as the published chain runs it: the weight-less ResNet-50 detector filled
// natively from random weights in the layout of detection_Resnet50_Final.pth (with
// DataParallel's prefix and batch norm's counters) finds the faces that
// test/py/retinaface_reference.py finds with the project's eager network; the decoding,
// suppression and the published helper's quirks, on crafted network outputs, give what is
// computed here by hand.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace, DifFaceError, Tensor, demoModelsDir } from 'difface';

import { runPython, tempDir, testPyDir } from './helpers/env';
import { readNpy } from './helpers/npy';
import { toTensor } from './helpers/tensors';

interface Face {
  box: [number, number, number, number];
  score: number;
  points: [number, number][];
}

function copyDemoModels(into: string): void {
  for (const file of fs.readdirSync(demoModelsDir())) fs.copyFileSync(path.join(demoModelsDir(), file), path.join(into, file));
}

function rowOf(face: Face): number[] {
  return [...face.box, face.score, ...face.points.flat()];
}

describe('the RetinaFace detector', function () {
  let reference: string;
  let engine: DifFace;

  before(async function () {
    reference = tempDir('retinaface');
    runPython(path.join(testPyDir, 'retinaface_reference.py'), [reference, '100', '140']);
    const modelDir = tempDir('retinaface-models');
    copyDemoModels(modelDir);
    fs.copyFileSync(path.join(reference, 'detection_Resnet50_Final.pth'), path.join(modelDir, 'detection_Resnet50_Final.pth'));
    engine = await DifFace.load(modelDir);
  });
  after(function () {
    engine?.dispose();
  });

  it('finds the faces the eager network and the published post-processing find, enlarged to 640 and scaled back', async function () {
    assert.equal(engine.detectorAvailable, true);
    const expected = readNpy(path.join(reference, 'faces.npy'));
    using input = toTensor(readNpy(path.join(reference, 'input.npy')));
    const faces = await engine.detectFaces(input);
    const count = expected.shape[0] as number;
    assert.ok(count > 50, `the reference has ${count} faces to compare`);
    // Two float32 computations of a ResNet-50 differ in the last bits, so a score within a
    // hair of 0.8 could fall on the other side: faces are matched by their boxes, and all
    // but a few must match, with every number of a matched face equal within 1e-3.
    const unmatched: number[] = [];
    let largest = 0;
    for (let r = 0; r < count; r++) {
      const want = Array.from(expected.data.subarray(15 * r, 15 * r + 15));
      const found = faces.find((face) => rowOf(face).slice(0, 4).every((v, i) => Math.abs(v - (want[i] as number)) < 1e-2));
      if (found === undefined) {
        unmatched.push(r);
        continue;
      }
      rowOf(found).forEach((v, i) => { largest = Math.max(largest, Math.abs(v - (want[i] as number))); });
    }
    assert.ok(unmatched.length <= count / 50, `${unmatched.length} of ${count} faces unmatched`);
    assert.ok(Math.abs(faces.length - count) <= count / 50, `${faces.length} faces found, ${count} expected`);
    assert.ok(largest < 1e-3, `matched faces differ by up to ${largest}`);
    // The published helper divides the score by the enlargement (640 / 100) too.
    assert.ok(faces.every((face) => face.score > 0.8 / 6.4 && face.score <= 1 / 6.4 + 1e-6));
  });

  describe('post-processing, on crafted outputs for a 64 x 64 image', function () {
    // Prior boxes: 8 x 8 cells of sizes 16 and 32, 4 x 4 of 64 and 128, 2 x 2 of 256 and 512.
    const ANCHORS = 8 * 8 * 2 + 4 * 4 * 2 + 2 * 2 * 2;
    const anchor = (row: number, column: number, second: boolean) => (row * 8 + column) * 2 + (second ? 1 : 0);
    const A = anchor(2, 5, true);   // size 32, centre (44, 20); score 0.95, moved and widened
    const B = anchor(2, 6, true);   // size 32, centre (52, 20); score 0.9, overlaps A by 0.56: suppressed
    const C = anchor(5, 1, false);  // size 16, centre (12, 44); score 0.85
    const D = anchor(6, 6, false);  // score 0.79: under the threshold

    function outputs(): { loc: Tensor; conf: Tensor; landmarks: Tensor } {
      const loc = new Float32Array(ANCHORS * 4);
      const conf = new Float32Array(ANCHORS * 2);
      const landmarks = new Float32Array(ANCHORS * 10);
      for (let i = 0; i < ANCHORS; i++) conf[2 * i] = 1;
      for (const [i, p] of [[A, 0.95], [B, 0.9], [C, 0.85], [D, 0.79]] as const) {
        conf[2 * i] = 1 - p;
        conf[2 * i + 1] = p;
      }
      // A: its centre moved by (+1, -1) tenths of its size, its width times 1.5.
      loc.set([1, -1, Math.log(1.5) / 0.2, 0], 4 * A);
      // Points in tenths of the anchor's size: eyes, nose, mouth corners.
      landmarks.set([-3, -2, 3, -2, -7, 0, -2, 3, 2, 3], 10 * A);
      landmarks.set([-5, -3, 5, -3, 0, 0, -2, 3, 2, 3], 10 * C);
      return {
        loc: Tensor.fromFloat32(loc, [ANCHORS, 4]),
        conf: Tensor.fromFloat32(conf, [ANCHORS, 2]),
        landmarks: Tensor.fromFloat32(landmarks, [ANCHORS, 10]),
      };
    }

    // By hand: centre + offset x tenth of the size, at scale 1.
    const faceA = [23.2, 0.8, 71.2, 32.8, 0.95, 34.4, 13.6, 53.6, 13.6, 21.6, 20, 37.6, 29.6, 50.4, 29.6];
    const faceC = [4, 36, 20, 52, 0.85, 4, 39.2, 20, 39.2, 12, 44, 8.8, 48.8, 15.2, 48.8];

    function assertRows(faces: Face[], expected: number[][]): void {
      assert.equal(faces.length, expected.length);
      faces.forEach((face, f) => rowOf(face).forEach((v, i) => {
        assert.ok(Math.abs(v - (expected[f] as number[])[i]!) < 1e-4, `face ${f}, value ${i}: ${v} vs ${(expected[f] as number[])[i]}`);
      }));
    }

    it('decodes, thresholds at 0.8 and suppresses overlaps above 0.4, best first', async function () {
      const given = outputs();
      try {
        assertRows(await engine.decodeDetections(given, 64, 64, 1), [faceA, faceC]);
      } finally {
        Object.values(given).forEach((t) => t.dispose());
      }
    });

    it('divides everything by the enlargement, the score too, then applies the helper\'s eye-distance filter as written', async function () {
      const given = outputs();
      try {
        // At scale 2, C's "eye distance" (right eye to nose, across: 5 tenths of 16 = 8, halved) is under 5;
        // A's (10 tenths of 32, halved) is not, although A's eyes are level.
        assertRows(await engine.decodeDetections(given, 64, 64, 2), [faceA.map((v) => v / 2)]);
      } finally {
        Object.values(given).forEach((t) => t.dispose());
      }
    });

    it('refuses outputs that do not fit the image\'s prior boxes', async function () {
      const given = outputs();
      try {
        await assert.rejects(engine.decodeDetections(given, 64, 72, 1), (error: DifFaceError) =>
          error.code === 'EARG' && /anchors/.test(error.message));
      } finally {
        Object.values(given).forEach((t) => t.dispose());
      }
    });
  });

  it('names the command that fetches the weights when they are not in the model directory', async function () {
    const bare = await DifFace.load(demoModelsDir());
    try {
      assert.equal(bare.detectorAvailable, false);
      using input = Tensor.fromFloat32(new Float32Array(3 * 8 * 8), [1, 3, 8, 8]);
      await assert.rejects(bare.detectFaces(input), (error: DifFaceError) =>
        error.code === 'EMODELDIR' && error.message.includes('difface models fetch --only photos'));
    } finally {
      bare.dispose();
    }
  });
});

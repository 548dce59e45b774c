// The published alignment: where the whole-photo module is built with OpenCV, faces are
// aligned with its LMEDS similarity, which agrees with least squares on five consistent
// points and ignores a point that is off, where least squares is pulled by it. Skipped, with
// the reason, where OpenCV is not built in (faces are then aligned by least squares).
import { strict as assert } from 'node:assert';

import { FACE_TEMPLATE, alignFace, leastSquaresSimilarity, lmedsAvailable } from 'difface';

type Point = [number, number];

/** The template moved by a known similarity: rotation `angle`, scale `scale`, shift (dx, dy). */
function placed(angle: number, scale: number, dx: number, dy: number): Point[] {
  const [c, s] = [Math.cos(angle) * scale, Math.sin(angle) * scale];
  return FACE_TEMPLATE.map(([x, y]) => [c * x - s * y + dx, s * x + c * y + dy]);
}

function apply(map: readonly number[], [x, y]: Point): Point {
  return [(map[0] as number) * x + (map[1] as number) * y + (map[2] as number), (map[3] as number) * x + (map[4] as number) * y + (map[5] as number)];
}

function largestMiss(map: readonly number[], from: Point[], to: readonly Point[], which: number[]): number {
  return Math.max(...which.map((i) => {
    const [x, y] = apply(map, from[i] as Point);
    return Math.hypot(x - (to[i] as Point)[0], y - (to[i] as Point)[1]);
  }));
}

describe('aligning faces onto the template', function () {
  before(function () {
    if (!lmedsAvailable()) {
      // eslint-disable-next-line no-console
      console.log('      skipped: the whole-photo module was built without OpenCV (apt-get install libopencv-calib3d-dev)');
      this.skip();
    }
  });

  it('fits five consistent points as least squares does', function () {
    const points = placed(0.3, 0.4, 120, 80);
    const { map, kind } = alignFace(points);
    assert.equal(kind, 'lmeds');
    const squares = leastSquaresSimilarity(points, FACE_TEMPLATE);
    // OpenCV reads the points in float32, so the two agree to float32's precision in the crop.
    assert.ok(largestMiss(map, points, FACE_TEMPLATE, [0, 1, 2, 3, 4]) < 1e-3);
    assert.ok(largestMiss(squares, points, FACE_TEMPLATE, [0, 1, 2, 3, 4]) < 1e-6);
  });

  it('leaves out a point that is off, where least squares is pulled by it', function () {
    const points = placed(-0.2, 0.5, 300, 140);
    points[2] = [(points[2] as Point)[0] + 12, (points[2] as Point)[1] - 9];  // the nose tip misplaced
    const { map } = alignFace(points);
    const squares = leastSquaresSimilarity(points, FACE_TEMPLATE);
    const others = [0, 1, 3, 4];
    const lmedsMiss = largestMiss(map, points, FACE_TEMPLATE, others);
    const squaresMiss = largestMiss(squares, points, FACE_TEMPLATE, others);
    assert.ok(lmedsMiss < 1e-2, `LMEDS misses the four good points by ${lmedsMiss} crop pixels`);
    assert.ok(squaresMiss > 1, `least squares misses them by ${squaresMiss}`);
  });
});

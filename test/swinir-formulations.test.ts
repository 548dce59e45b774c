// The faster SwinIR formulation (tokens kept in window order, the bias and shift mask added
// once, fused attention on torch 2) computes what the published one computes, within 1e-4, on
// small configurations with random weights: shifted windows, batches, inputs padded to the
// window and sizes other than the one the network was built for. The published-size call is
// compared in `npm run bench` (bench/results/).
import { strict as assert } from 'node:assert';
import * as path from 'node:path';

import { runPython, testPyDir } from './helpers/env';

const TOLERANCE = 1e-4;

interface Case {
  name: string;
  input: number[];
  output: number[];
  resolution: number[];
  features: number[];
  shiftedBlocks: number;
  padded: boolean;
  largest: number;
  maxDiff: { eager: number; script: number; unfused: number };
  unshiftedDiff: number;
  strides: { published: number[]; eager: number[]; script: number[] };
}

interface Report {
  torch: string;
  fusedAttention: boolean;
  cases: Case[];
}

describe('SwinIR: faster formulation against the published one', function () {
  let report: Report;

  before(function () {
    report = JSON.parse(runPython(path.join(testPyDir, 'swinir_formulations.py'), [])) as Report;
  });

  it('covers shifted windows, batches of two, padded inputs and sizes other than the built one', function () {
    assert.ok(report.cases.length >= 8);
    assert.ok(report.cases.every((c) => c.shiftedBlocks > 0));
    assert.ok(report.cases.some((c) => c.input[0] === 2));
    assert.ok(report.cases.some((c) => c.padded));
    assert.ok(report.cases.some((c) => c.features.join() !== c.resolution.join()));
    // The shift matters in every case: a formulation that lost it or its mask would be caught.
    for (const c of report.cases) assert.ok(c.unshiftedDiff > 100 * TOLERANCE, `${c.name} ${c.input.join('x')}: ${c.unshiftedDiff}`);
  });

  it('hands back the estimate in the memory layout the published network gives it', function () {
    // The sampler's randn_like draws in memory order: another layout puts other noise on each pixel.
    for (const c of report.cases) {
      assert.deepEqual(c.strides.eager, c.strides.published, `${c.name}, input ${c.input.join('x')}`);
      assert.deepEqual(c.strides.script, c.strides.published, `${c.name}, input ${c.input.join('x')}`);
    }
    assert.ok(report.cases.some((c) => c.strides.published[1] === 1), 'no case comes back channels-last');
    assert.ok(report.cases.some((c) => c.strides.published[3] === 1), 'no case comes back contiguous');
  });

  it('uses scaled_dot_product_attention where torch has it', function () {
    const major = Number(report.torch.split('.')[0]);
    assert.equal(report.fusedAttention, major >= 2);
  });

  it('eager, TorchScript and unfused outputs are within 1e-4 of the published formulation', function () {
    for (const c of report.cases) {
      const what = `${c.name}, input ${c.input.join('x')}`;
      assert.ok(c.largest > 0.1, `${what}: the published output is near zero (${c.largest})`);
      for (const [kind, diff] of Object.entries(c.maxDiff)) {
        assert.ok(diff <= TOLERANCE, `${what}, ${kind}: max difference ${diff}`);
      }
    }
  });
});

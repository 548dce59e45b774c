// The networks built from the published configuration have exactly the published
// checkpoints' state-dict layout: names, shapes and order (test/fixtures/reference/official-layout.json).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { referenceDir, runPython, testPyDir } from './helpers/env';

interface Layout {
  unet_state_dict: Record<string, number[]>;
  backbone_state_dict: Record<string, number[]>;
  unet_parameter_count: number;
  backbone_parameter_count: number;
}

interface Built {
  unet: [string, number[]][];
  backbone: [string, number[]][];
  unet_parameters: number;
  backbone_parameters: number;
}

describe('published network layout', function () {
  const layoutFile = path.join(referenceDir, 'official-layout.json');
  const layout = JSON.parse(fs.readFileSync(layoutFile, 'utf8')) as Layout;
  let built: Built;

  before(function () {
    built = JSON.parse(runPython(path.join(testPyDir, 'layout.py'), [layoutFile])) as Built;
  });

  it('the UNet has the published names, shapes and order', function () {
    assert.deepEqual(built.unet, Object.entries(layout.unet_state_dict));
    assert.equal(built.unet_parameters, layout.unet_parameter_count);
  });

  it('the SwinIR backbone has the published names, shapes and order, buffers included', function () {
    assert.deepEqual(built.backbone, Object.entries(layout.backbone_state_dict));
    assert.equal(built.backbone_parameters, layout.backbone_parameter_count);
  });
});

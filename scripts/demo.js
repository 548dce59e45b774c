#!/usr/bin/env node
// `npm run demo`: after setup, restores the sample face this project ships
// (assets/sample-face.png) with the models `difface restore` finds (the demo models on a
// fresh clone) and says where the result and its comparison picture are.
'use strict';

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const sample = path.join(root, 'assets', 'sample-face.png');
const out = path.join(root, 'demo-output');
const run = spawnSync(process.execPath, [path.join(root, 'dist', 'cli.js'), 'restore', sample, '-o', out, '--aligned',
  '--compare', '--seed', '1'], { stdio: 'inherit' });
if (run.status !== 0) process.exit(run.status ?? 1);
console.log(`\nrestored face:      ${path.relative(process.cwd(), path.join(out, 'sample-face.png'))}`);
console.log(`comparison picture: ${path.relative(process.cwd(), path.join(out, 'sample-face.compare.png'))}` +
  '  (input | backbone estimate | restored)');

// The CUDA prebuilt (torch 2.14.1 for CUDA 13) as a user gets it: the package packed with
// both variants and installed into an app with only node, npm and sh on PATH, then run with
// the CUDA torch's virtual environment activated. The CUDA variant loads (its NVIDIA
// libraries come from the wheels beside that torch, without LD_LIBRARY_PATH), `difface
// doctor` reports it, and the CLI restores a face. On a machine without a GPU it reports
// CUDA unavailable with the reason and restores on the CPU; with one, it names the GPU and
// restores on it.
//
// It needs that torch (`npm run setup:cuda` makes .venv-cuda/, about 4.5 GB; or set
// DIFFACE_CUDA_PYTHON) and builds the CUDA variant (minutes, the first time). Without it,
// it skips, saying so. `npm run test:cuda-prebuilt` runs it alone.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { repoRoot } from './helpers/env';
import { alignedFaces } from './helpers/images';
import { bareEnvironment, packAndInstall, run } from './helpers/package';

interface CudaTorch {
  python: string;
  version: string;
  cuda: string;
  folder: string;
}

interface TorchEnv {
  VARIANTS: Record<'cuda', { torch: string; cuda: string }>;
  pythonFor(variant: unknown): string;
  torchInfo(python: string): { version: string; cuda: string | null; libDir: string } | undefined;
  matches(variant: unknown, info: unknown): boolean;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const torchEnv = require(path.join(repoRoot, 'scripts', 'torch-env.js')) as TorchEnv;

/** The CUDA torch the CUDA variant is built against (the one scripts/prebuild.js uses), if this machine has it. */
function cudaTorch(): CudaTorch | undefined {
  const variant = torchEnv.VARIANTS.cuda;
  const python = torchEnv.pythonFor(variant);
  const info = torchEnv.torchInfo(python);
  if (info === undefined || !torchEnv.matches(variant, info) || info.cuda === null) return undefined;
  return { python, version: info.version, cuda: info.cuda, folder: path.dirname(info.libDir) };
}

interface Report {
  runtime?: { binary: string; variant: string; torch: string; cuda: boolean; cudaReason: string | null; cudnn: string | null;
    cudaGraphs: boolean; gpus: { name: string; memoryBytes: number }[]; libtorch: { path: string; from: string } };
  addonError?: { message: string };
  variants: string[];
}

describe('the CUDA prebuilt', function () {
  let torch: CudaTorch;
  let app: string;
  let activated: NodeJS.ProcessEnv;
  const cli = (): string => path.join(app, 'node_modules', '.bin', 'difface');

  before(function () {
    const found = cudaTorch();
    if (found === undefined) {
      // eslint-disable-next-line no-console
      console.log('      skipped: no CUDA 13 torch 2.14 here (`npm run setup:cuda` installs one into .venv-cuda/, about 4.5 GB)');
      this.skip();
    }
    torch = found;
    const env = bareEnvironment();
    ({ app } = packAndInstall('cpu,cuda', env));
    const venv = path.dirname(path.dirname(torch.python));
    activated = { ...env, PATH: `${path.join(venv, 'bin')}:${env.PATH ?? ''}`, VIRTUAL_ENV: venv };
  });

  it('ships both variants, each saying what it runs on', function () {
    const prebuilds = path.join(app, 'node_modules', 'difface', 'prebuilds', 'linux-x64');
    const cuda = JSON.parse(fs.readFileSync(path.join(prebuilds, 'torch2.14-cu13', 'variant.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(cuda, { name: 'torch2.14-cu13', torch: torch.version, cuda: torch.cuda, install: 'python3 -m pip install torch==2.14.1' });
    assert.ok(fs.existsSync(path.join(prebuilds, 'torch2.14-cu13', 'difface.node')));
    assert.ok(fs.existsSync(path.join(prebuilds, 'torch2.13-cpu', 'difface.node')));
  });

  it('loads against the CUDA torch on PATH, and doctor reports the variant, libtorch, CUDA and cuDNN', function () {
    const doctor = run(cli(), ['doctor', '--json'], { cwd: app, env: activated });
    assert.equal(doctor.code, 0, doctor.out);
    const report = JSON.parse(doctor.out) as Report;
    const runtime = report.runtime;
    assert.ok(runtime, doctor.out);
    assert.equal(runtime.binary, 'prebuilt');
    assert.equal(runtime.variant, 'torch2.14-cu13');
    assert.match(runtime.torch, /^2\.14\./);
    assert.deepEqual(runtime.libtorch, { path: path.join(torch.folder, 'lib'), version: torch.version, from: 'python3 on PATH' });
    assert.ok(runtime.cudaGraphs, 'built with CUDA graphs');
    assert.match(runtime.cudnn ?? '', /^9\.\d+\.\d+$/);
    if (runtime.cuda) {
      assert.ok(runtime.gpus.length > 0 && runtime.gpus.every((gpu) => gpu.name.length > 0 && gpu.memoryBytes > 2 ** 30), doctor.out);
    } else {
      assert.deepEqual(runtime.gpus, []);
      assert.match(runtime.cudaReason ?? '', /no NVIDIA driver|CUDA runtime/);
    }
    const text = run(cli(), ['doctor'], { cwd: app, env: activated });
    assert.match(text.out, /^addon: +prebuilt \(torch2\.14-cu13\)/m);
    assert.match(text.out, runtime.cuda ? /^GPU 0: +\S.*, \d+\.\d GiB, compute capability \d+\.\d+$/m : /^CUDA: +no: (no NVIDIA driver|the CUDA runtime)/m);
  });

  it('restores a face from the CLI, on the GPU when there is one, else on the CPU', function () {
    const info = JSON.parse(run('node', ['-e', "console.log(JSON.stringify(require('difface').versions()))"],
      { cwd: app, env: activated }).out) as { cuda: boolean };
    const face = alignedFaces()[0] as string;
    const out = path.join(app, 'out');
    const restored = run(cli(), ['restore', face, '-o', out, '--aligned', '--device', info.cuda ? 'cuda' : 'cpu', '--json'],
      { cwd: app, env: activated });
    assert.equal(restored.code, 0, restored.out);
    assert.ok(fs.statSync(path.join(out, path.basename(face))).size > 1000);
  });

  it('refuses the CUDA device with EDEVICE and the reason when there is no GPU', function () {
    const script = [
      "const { DifFace, resolveModels, versions } = require('difface');",
      'if (versions().cuda) { console.log("has a GPU"); process.exit(0); }',
      "DifFace.load(resolveModels().dir, { device: 'cuda' }).catch((e) => console.log(e.code, e.message));",
    ].join('\n');
    const refused = run('node', ['-e', script], { cwd: app, env: activated });
    assert.equal(refused.code, 0, refused.out);
    if (refused.out.trim() === 'has a GPU') return;
    assert.match(refused.out, /^EDEVICE device 'cuda' was asked for/m);
  });
});

// Compiled UNets (AOTInductor packages, `difface compile`): the cache key and what makes a
// package stale, the fallback to TorchScript with a note for a stale, missing or broken
// package, and a real compile of the small reference UNet held to the TorchScript export and
// to the stored published UNet call.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFace, compileUNet, versions } from 'difface';
import type { ModelCard } from 'difface';

import { repoRoot, smallReferenceDir, tempDir } from './helpers/env';
import { rejectsWith } from './helpers/errors';
import { smallConversion } from './helpers/fixtures';
import { batchSlice, maxAbsDiff, readNpy } from './helpers/npy';
import { toTensor, valuesOf } from './helpers/tensors';

// The cache's rules, which the package does not export, from the compiled package.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const compiled = require(path.join(repoRoot, 'dist', 'compiled.js')) as typeof import('../dist/compiled');

const CALL_TOLERANCE = 1e-4;

/** A private copy of the small model directory, whose compiled/ folder a test may fill. */
function copyOfSmall(source: string): string {
  const dir = path.join(tempDir('compiled'), 'models');
  fs.cpSync(source, dir, { recursive: true });
  return dir;
}

function writeRecord(dir: string, record: Record<string, unknown>, packageBytes: Buffer | null): string {
  fs.mkdirSync(dir, { recursive: true });
  const name = `unet-${String(record.device)}-${String(record.dtype)}-b${String(record.batch)}-${String(record.height)}x${String(record.width)}`;
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ ...record, file: `${name}.pt2` }));
  if (packageBytes !== null) fs.writeFileSync(path.join(dir, `${name}.pt2`), packageBytes);
  return path.join(dir, `${name}.pt2`);
}

/** Runs fn while collecting the process warnings of code DIFFACE_COMPILED it emits. */
async function warningsDuring<T>(fn: () => Promise<T>): Promise<{ value: T; warnings: string[] }> {
  const warnings: string[] = [];
  const listen = (warning: Error & { code?: string }) => { if (warning.code === 'DIFFACE_COMPILED') warnings.push(warning.message); };
  process.on('warning', listen);
  try {
    const value = await fn();
    // Warnings are delivered on a later tick.
    await new Promise((resolve) => setImmediate(resolve));
    return { value, warnings };
  } finally {
    process.off('warning', listen);
  }
}

describe('compiled UNets', function () {
  let small: { out: string; card: ModelCard };
  const runtime = { torch: '2.13.0', cpuCapability: 'AVX512', gpus: [{ name: 'H200', memoryBytes: 1, capability: '9.0' }] };

  before(async function () {
    small = await smallConversion();
  });

  describe('the cache key', function () {
    it('names the torch version without its local part, the instruction set or GPU architecture, the dtype and the UNet file', function () {
      const cpu = compiled.expectedKey(small.card, 'cpu', 'float32', { ...runtime, torch: '2.13.0+cpu' });
      assert.deepEqual(cpu, { format: compiled.PACKAGE_FORMAT, torch: '2.13.0', device: 'cpu-avx512', dtype: 'float32', unetSha256: small.card.unet.sha256 });
      assert.equal(compiled.expectedKey(small.card, 'cuda:0', 'float16', runtime).device, 'cuda-sm90');
      assert.equal(compiled.expectedKey(small.card, 'cpu', 'float32', { ...runtime, cpuCapability: 'AVX2' }).device, 'cpu-avx2');
      assert.throws(() => compiled.expectedKey(small.card, 'cuda:3', 'float16', runtime), /no GPU cuda:3/);
    });

    it('keeps matching packages, passes over other devices and dtypes, and notes stale, missing and unreadable ones', function () {
      const dir = tempDir('cache');
      const key = compiled.expectedKey(small.card, 'cpu', 'float32', runtime);
      const shape = { height: 64, width: 64 };
      const good = writeRecord(dir, { ...key, batch: 2, ...shape }, Buffer.from('package'));
      writeRecord(dir, { ...key, device: 'cuda-sm90', dtype: 'float16', batch: 8, ...shape }, Buffer.from('package'));
      writeRecord(dir, { ...key, dtype: 'bfloat16', batch: 8, ...shape }, Buffer.from('package'));
      writeRecord(dir, { ...key, torch: '2.11.0', batch: 1, ...shape }, Buffer.from('package'));
      writeRecord(dir, { ...key, unetSha256: 'f'.repeat(64), batch: 3, ...shape }, Buffer.from('package'));
      writeRecord(dir, { ...key, format: key.format + 1, batch: 5, ...shape }, Buffer.from('package'));
      writeRecord(dir, { ...key, batch: 4, ...shape }, null);
      fs.writeFileSync(path.join(dir, 'unet-cpu-avx512-float32-b6-64x64.json'), '{ not json');

      const lookup = compiled.findPackages(dir, key);
      assert.deepEqual(lookup.packages, [{ path: good, batch: 2, height: 64, width: 64 }]);
      const notes = lookup.notes.join('\n');
      assert.equal(lookup.notes.length, 5, notes);
      assert.match(notes, /b1-64x64\.pt2 is stale \(it was compiled with torch 2\.11\.0, the engine runs libtorch 2\.13\.0\)/);
      assert.match(notes, /b3-64x64\.pt2 is stale \(it holds the weights of another UNet file\)/);
      assert.match(notes, /b5-64x64\.pt2 is stale \(it is in record format/);
      assert.match(notes, /b4-64x64\.pt2 named in .* is missing/);
      assert.match(notes, /b6-64x64\.json is not readable/);
      for (const note of lookup.notes) assert.match(note, /run 'difface compile' again/);
    });

    it('finds nothing, without a note, where there is no cache', function () {
      assert.deepEqual(compiled.findPackages(path.join(tempDir('nocache'), 'compiled'), compiled.expectedKey(small.card, 'cpu', 'float32', runtime)),
        { packages: [], notes: [] });
    });

    it("uses packages on CUDA by default, on the CPU only when 'on', and never when 'off'", function () {
      assert.equal(compiled.usesCompiled('auto', 'cuda'), true);
      assert.equal(compiled.usesCompiled('auto', 'cpu'), false);
      assert.equal(compiled.usesCompiled('on', 'cpu'), true);
      assert.equal(compiled.usesCompiled('off', 'cuda:1'), false);
      assert.throws(() => compiled.compiledMode('always'), /must be 'auto', 'on' or 'off'/);
    });

    it('the cache sits next to the model unless DIFFACE_COMPILE_CACHE says where', function () {
      assert.equal(compiled.cacheDir('/m'), path.join('/m', 'compiled'));
      assert.equal(compiled.cacheDir('/m', { DIFFACE_COMPILE_CACHE: '/elsewhere' }), path.resolve('/elsewhere'));
    });
  });

  describe('falling back to TorchScript', function () {
    it('rejects a bad mode with EARG before loading anything', async function () {
      await rejectsWith(DifFace.load(small.out, { compiled: 'yes' as never }), 'EARG', /compiled must be 'auto', 'on' or 'off'/);
    });

    it('runs TorchScript, with a warning, for a stale package and for one that cannot be loaded, and computes the same', async function () {
      const dir = copyOfSmall(small.out);
      const key = compiled.expectedKey(small.card, 'cpu', 'float32', versions());
      const broken = writeRecord(path.join(dir, 'compiled'), { ...key, batch: 2, height: 64, width: 64 }, Buffer.from('not a zip archive'));
      writeRecord(path.join(dir, 'compiled'), { ...key, torch: '1.0.0', batch: 1, height: 64, width: 64 }, Buffer.from('x'));

      const { value: engine, warnings } = await warningsDuring(() => DifFace.load(dir, { compiled: 'on' }));
      using x = toTensor(readNpy(path.join(smallReferenceDir, 'unet_x.npy')));
      const t = Array.from(readNpy(path.join(smallReferenceDir, 'unet_t.npy')).data);
      const plain = await DifFace.load(small.out, { compiled: 'off' });
      try {
        const state = engine.compiled();
        assert.equal(state.mode, 'on');
        assert.deepEqual(state.batches, []);
        assert.equal(state.notes.length, 2, state.notes.join('\n'));
        assert.match(state.notes.join('\n'), /stale \(it was compiled with torch 1\.0\.0/);
        assert.ok(state.notes.some((note) => note.includes(broken) && /cannot be loaded, so that shape runs the TorchScript export/.test(note)),
          state.notes.join('\n'));
        assert.deepEqual(warnings, state.notes);
        assert.deepEqual(plain.compiled(), { mode: 'off', batches: [], notes: [] });
        const got = await valuesOf(engine.unet(x, t));
        const expected = await valuesOf(plain.unet(x, t));
        assert.equal(maxAbsDiff(got, expected), 0);
      } finally {
        engine.dispose();
        plain.dispose();
      }
    });

    it("says so when compiled: 'on' finds nothing to run, and runs TorchScript", async function () {
      const { value: engine, warnings } = await warningsDuring(() => DifFace.load(copyOfSmall(small.out), { compiled: 'on' }));
      try {
        const state = engine.compiled();
        assert.deepEqual(state.batches, []);
        assert.equal(state.notes.length, 1);
        assert.match(state.notes[0] ?? '', /found no compiled UNet for cpu-\w+ in float32 in .*compiled, so the TorchScript export runs; make one with 'difface compile --models .* --device cpu --dtype float32'/);
        assert.deepEqual(warnings, state.notes);
      } finally {
        engine.dispose();
      }
    });

    it("leaves the cache alone on the CPU in 'auto' mode", async function () {
      const dir = copyOfSmall(small.out);
      const key = compiled.expectedKey(small.card, 'cpu', 'float32', versions());
      writeRecord(path.join(dir, 'compiled'), { ...key, batch: 2, height: 64, width: 64 }, Buffer.from('not a zip archive'));
      const { value: engine, warnings } = await warningsDuring(() => DifFace.load(dir));
      try {
        assert.deepEqual(engine.compiled(), { mode: 'auto', batches: [], notes: [] });
        assert.deepEqual(warnings, []);
      } finally {
        engine.dispose();
      }
    });
  });

  describe('difface compile', function () {
    const cli = (args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), 'compile', ...args],
      { encoding: 'utf8', env: { ...process.env, DIFFACE_MODELS: '' } });

    it('turns bad flags into usage errors (exit code 2) that name the flag', function () {
      for (const [flags, message] of [[['--batch', '0,8'], /--batch must be a list of batch sizes from 1 to 64/],
        [['--size', '512x'], /--size must be a height and width \(H or HxW\) in whole pixels of at least 8/], [['--device', 'tpu'], /--device must be 'cpu'/],
        [['--dtype', 'float16'], /only supported on CUDA/], [['--frobnicate'], /Unknown option/]] as const) {
        const run = cli([...flags, '--models', small.out]);
        assert.equal(run.status, 2, `${flags.join(' ')}: ${run.stderr}`);
        assert.match(run.stderr, message);
      }
    });

    it('names a folder that is not a model directory, with EMODELDIR and exit code 1', function () {
      const run = cli(['--models', tempDir('notmodels'), '--out', tempDir('cacheout')]);
      assert.equal(run.status, 1, run.stderr);
      assert.match(run.stderr, /has no readable difface\.json .*\[EMODELDIR\]/);
    });
  });

  describe('compiling', function () {
    it('refuses bad options with EARG, and a directory without a model card with EMODELDIR', async function () {
      await rejectsWith(compileUNet(small.out, { batches: [0] }), 'EARG', /batches must be a list/);
      await rejectsWith(compileUNet(small.out, { dtype: 'float16' }), 'EARG', /only supported on CUDA/);
      await rejectsWith(compileUNet(small.out, { size: [4, 64] }), 'EARG', /size must be/);
      await rejectsWith(compileUNet(tempDir('empty'), { out: tempDir('out') }), 'EMODELDIR', /difface\.json/);
    });

    it('compiles the small UNet for batch 2, which the engine then runs within 1e-4 of TorchScript and of the published call', async function () {
      if (!versions().compiledPackages) this.skip();
      // The C++ compile of the generated code takes a minute or more on two cores.
      this.timeout(1_200_000);
      const dir = copyOfSmall(small.out);
      const events: string[] = [];
      const result = await compileUNet(dir, { batches: [2], onProgress: (event) => events.push(event.event) });
      assert.deepEqual(events, ['compiling', 'compiled']);
      assert.equal(result.dir, path.join(dir, 'compiled'));
      assert.equal(result.packages.length, 1);
      const [record] = result.packages;
      assert.ok(record !== undefined);
      assert.deepEqual([record.batch, record.height, record.width, record.dtype], [2, 64, 64, 'float32']);
      assert.ok(record.maxDifferenceFromEager <= CALL_TOLERANCE, String(record.maxDifferenceFromEager));
      assert.ok(fs.statSync(path.join(result.dir, record.file)).size > 0);

      const engine = await DifFace.load(dir, { compiled: 'on' });
      const plain = await DifFace.load(small.out, { compiled: 'off' });
      try {
        assert.deepEqual(engine.compiled(), { mode: 'on', batches: [2], notes: [] });
        using x = toTensor(readNpy(path.join(smallReferenceDir, 'unet_x.npy')));
        const t = Array.from(readNpy(path.join(smallReferenceDir, 'unet_t.npy')).data);
        const got = await valuesOf(engine.unet(x, t));
        const torchscript = await valuesOf(plain.unet(x, t));
        const difference = maxAbsDiff(got, torchscript);
        assert.ok(difference <= CALL_TOLERANCE, `compiled against TorchScript: ${difference}`);
        assert.ok(maxAbsDiff(got, readNpy(path.join(smallReferenceDir, 'unet_out.npy')).data) <= CALL_TOLERANCE);
        // Another batch size has no package: TorchScript runs it, exactly as the plain engine.
        using one = toTensor(batchSlice(readNpy(path.join(smallReferenceDir, 'unet_x.npy')), 0, 1));
        assert.equal(maxAbsDiff(await valuesOf(engine.unet(one, [t[0] as number])), await valuesOf(plain.unet(one, [t[0] as number]))), 0);
      } finally {
        engine.dispose();
        plain.dispose();
      }
    });
  });
});

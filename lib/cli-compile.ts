/**
 * `difface compile`: compiles the UNet of a model directory ahead of time (AOTInductor), one
 * package per batch size, into the cache the engine reads at load (lib/compiled.ts).
 */
import { parseArgs } from 'node:util';

import { compileUNet, CompileProgress } from './compiled';
import { numericFlag, textFlag, usage } from './cli-options';
import { resolveModels } from './models';
import * as is from './validate';

/** '1,8' -> [1, 8]; the rule is the API's, named as the flag. */
function batchesFlag(text: string): number[] {
  return usage(() => is.compileBatches(text.split(',').map((part) => Number(part.trim())), '--batch'));
}

/** '512' or '512x768' -> [height, width]; the rule is the API's, named as the flag. */
function sizeFlag(text: string): [number, number] {
  const parts = text.toLowerCase().split('x').map(Number);
  return usage(() => is.compileSize(parts.length === 1 ? [parts[0], parts[0]] : parts, '--size'));
}

function describe(event: CompileProgress): string {
  if (event.event === 'compiling') return `compiling ${event.name} (batch ${event.batch})...`;
  return `compiled ${event.name} in ${event.seconds.toFixed(1)} s (largest difference from eager ${event.maxDifference.toExponential(2)})`;
}

export async function compileCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string' },
      device: { type: 'string', default: 'cpu' },
      dtype: { type: 'string', default: 'float32' },
      batch: { type: 'string', default: '1' },
      size: { type: 'string' },
      threads: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const models = resolveModels(values.models);
  const device = textFlag(values.device, 'device', is.device);
  const dtype = textFlag(values.dtype, 'dtype', is.dtype);
  const threads = numericFlag(values.threads, 'threads', is.threads);
  const compiling = usage(() => compileUNet(models.dir, {
    device,
    dtype,
    batches: batchesFlag(values.batch),
    ...(values.size !== undefined ? { size: sizeFlag(values.size) } : {}),
    ...(threads !== undefined ? { threads } : {}),
    ...(values.out !== undefined ? { out: values.out } : {}),
    onProgress: (event) => { if (!values.json) process.stderr.write(describe(event) + '\n'); },
  }));
  const result = await compiling.catch((error: unknown) => usage(() => { throw error; }));
  if (values.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else {
    process.stdout.write(`compiled ${result.packages.length} package(s) into ${result.dir} in ${result.seconds.toFixed(1)} s; ` +
      `engines loading ${models.dir} on ${device} in ${dtype} use them for ` +
      `batch ${result.packages.map((p) => p.batch).join(', ')} at ${String(result.packages[0]?.height)}x${String(result.packages[0]?.width)}` +
      `${device === 'cpu' ? " when loaded with compiled: 'on' (DIFFACE_COMPILED=on)" : ''}\n`);
  }
  return 0;
}

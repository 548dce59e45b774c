#!/usr/bin/env node
/**
 * The `difface` command line.
 *
 *   difface convert --unet U.pth --backbone B.pth [--config C] --out DIR
 *   difface --version
 */
import { parseArgs } from 'node:util';

import { convertCheckpoints } from './convert';
import { DifFaceError } from './errors';
import { versions, packageVersion } from './versions';

const USAGE = `Usage:
  difface convert --unet U.pth --backbone B.pth [--config C] --out DIR
      Converts the published DifFace checkpoints (iddpm_ffhq512_ema500000.pth and
      swinir_restoration512_L1.pth) into a model directory the engine loads. C is the
      published sampling YAML or a JSON with unet_config, backbone_config and
      diffusion_config; without it, the published configuration.
  difface --version [--json]
      The package, the libtorch it runs on, and CUDA availability.
  difface help`;

class UsageError extends Error {}

async function convertCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      unet: { type: 'string' },
      backbone: { type: 'string' },
      config: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.unet === undefined || values.backbone === undefined || values.out === undefined) {
    throw new UsageError('convert needs --unet, --backbone and --out');
  }
  const card = await convertCheckpoints({
    unet: values.unet,
    backbone: values.backbone,
    out: values.out,
    ...(values.config !== undefined ? { config: values.config } : {}),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(card) + '\n');
  } else {
    process.stdout.write(`converted: ${values.out} (UNet ${card.unet.parameters.toLocaleString('en')} and backbone ` +
      `${card.backbone.parameters.toLocaleString('en')} parameters, respacing ${card.schedule.respacing}, ` +
      `start step ${card.sampling.startStep}, eta ${card.sampling.eta})\n`);
  }
  return 0;
}

function versionCommand(argv: string[]): number {
  const json = argv.includes('--json');
  let info;
  try {
    info = versions();
  } catch (error) {
    if (json) throw error;
    process.stdout.write(`difface ${packageVersion()}\n`);
    throw error;
  }
  if (json) {
    process.stdout.write(JSON.stringify(info) + '\n');
  } else {
    process.stdout.write(`difface ${info.difface} (node ${info.node}, libtorch ${info.torch}, ` +
      `CUDA ${info.cuda ? `yes, ${info.cudaDevices} device(s)` : 'no'}, ${info.binary} addon)\n`);
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'convert':
        return await convertCommand(rest);
      case '--version':
      case '-v':
      case 'version':
        return versionCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`difface: ${(error as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    if (error instanceof DifFaceError) {
      process.stderr.write(`difface: ${error.message} [${error.code}]\n`);
      return 1;
    }
    process.stderr.write(`difface: unexpected failure: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error: unknown) => {
    process.stderr.write(`difface: ${String(error)}\n`);
    process.exitCode = 1;
  });
}

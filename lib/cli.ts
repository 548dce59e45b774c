#!/usr/bin/env node
/**
 * The `difface` command line.
 *
 *   difface restore <files or folders...> -o OUT [--aligned] [options]
 *   difface inpaint <files or folders...> -o OUT [--mask M | --masks DIR] [options]
 *   difface serve [--port P] [--models DIR] [--max-batch B] [--max-queue Q]
 *   difface worker --redis URL --queue NAME [--models DIR] [--max-batch B] [--concurrency C]
 *   difface models fetch [--only GROUPS] [--dir DIR] [--mirror URL | --from DIR] [--manifest FILE]
 *   difface convert --unet U.pth --backbone B.pth [--config C | --architecture DIR] [--out DIR]
 *   difface compile [--models DIR] [--device D] [--dtype T] [--batch 1,8] [--size H[xW]]
 *   difface doctor [--json]
 *   difface --version
 */
import { parseArgs } from 'node:util';

import { compileCommand } from './cli-compile';
import { inpaintCommand } from './cli-inpaint';
import { modelsCommand } from './cli-models';
import { UsageError } from './cli-options';
import { restoreCommand } from './cli-restore';
import { serveCommand } from './cli-serve';
import { workerCommand } from './cli-worker';
import { convertCheckpoints } from './convert';
import { formatDoctorReport, doctorReport } from './doctor';
import { DifFaceError } from './errors';
import { userModelsDir } from './models';
import { versions, packageVersion } from './versions';

const USAGE = `Usage:
  difface restore <files or folders...> -o OUT [--aligned] [options]
      With --aligned: restores aligned face crops (any size; PNG, JPEG, WebP, TIFF, AVIF)
      into OUT/X.<format>. Without it: restores every face of whole photos, writing the
      photo upscaled to OUT/X.<format> and each restored face to OUT/faces/X_NN.png
      (faces are found by RetinaFace when 'difface models fetch --only photos' has fetched
      its weights, else by dlib: apt-get install libdlib-dev libdlib-data).
      --models DIR       model directory (default: DIFFACE_MODELS, then the converted
                         weights in the user cache, then the demo models)
      --eta E            DDIM eta, 0 to 1 (default from the model card: 0.5)
      --start-step N     where the estimate is diffused to (default from the card: 100)
      --seed S           seed of each batch's generator (default: random)
      --device D         cpu, cuda or cuda:N (default cpu)
      --dtype T          float32, float16 or bfloat16 (the last two on CUDA)
      --batch B          faces per pass through the networks (default 1 on the CPU, 4 on CUDA)
      --format F         png, jpg or webp (default: the input's own format when writable, else png)
      --quality Q        JPEG and WebP quality, 1 to 100 (default 95)
      --max-pixels N     refuse larger inputs from their header (default 50000000)
      --compare          also write OUT/X.compare.png: input | backbone estimate | restored
                         (aligned faces)
      --upscale U        whole photos: the output's scale to the input, 1 to 8 (default 2)
      --only-center-face whole photos: restore only the face nearest the centre
      --min-face PIXELS  whole photos: leave faces narrower than this as they are
      --draw-box         whole photos: draw a box around each restored face
      --background B     whole photos: realesrgan (as published; needs RealESRGAN_x2plus.pth,
                         \`difface models fetch --only photos\`) or lanczos; default realesrgan
                         when its weights are in the model directory, else lanczos
      --detector D       whole photos: retinaface (as published; needs detection_Resnet50_Final.pth)
                         or dlib; default retinaface when its weights are there, else dlib
      --paste P          whole photos: parse (as published, a face-parsing mask; needs
                         parsing_parsenet.pth) or square; default parse when its weights are
                         there, else square
      --published-quirks whole photos: as the published tool does, ignore the colour profile and
                         drop the alpha, enlarge photos whose short side is under 512 to 512
                         first, and paste faces half an output pixel off
      --json             print one JSON summary on stdout (with each photo's faces and boxes)
      Exit code 0 when every input was restored, 1 when some failed, 2 for a usage error.
  difface inpaint <files or folders...> -o OUT [--mask M.png | --masks DIR] [options]
      Fills the holes of aligned faces into OUT/X.<format>. The holes are the white pixels
      of a mask image of the input's size (--mask: one for every input; --masks DIR: DIR/X.png
      for input X), or else the input's pixels that are exactly black, as the published tool
      takes them. Faces of any size are resized to the networks' (256 x 256 published) and back;
      the known pixels come back unchanged.
      --models DIR       inpainting model directory (default: DIFFACE_INPAINTING_MODELS,
                         then the user cache's inpainting/ folder)
      --eta E, --start-step N, --seed S, --device D, --batch B, --format F, --quality Q,
      --max-pixels N, --json   as for restore (defaults from the model card: eta 1, start step 120)
      --gamma G          weight of the masking regularizer, 0 to 1 (default from the card: 0.5)
      --compare          also write OUT/X.compare.png: input | LaMa estimate | inpainted
      Exit code 0 when every input was inpainted, 1 when some failed, 2 for a usage error.
  difface serve [--port P] [--host H] [--models DIR] [--device D] [--dtype T] [--threads N]
        [--max-batch B] [--max-queue Q] [--max-body-mb M] [--timeout S]
      Serves POST /v1/restore (the image as the body; eta, start_step, seed, format and
      quality as query parameters), GET /healthz and GET /metrics (Prometheus). Listens on
      127.0.0.1:8080 by default. Concurrent requests share batches of up to B faces (8);
      past Q waiting requests (1024) it answers 503. SIGINT or SIGTERM finish the requests
      in flight, then exit.
  difface worker --redis URL --queue NAME [--models DIR] [--device D] [--dtype T] [--threads N]
        [--max-batch B] [--concurrency C] [--prefix P] [--name N] [--lock-duration S]
        [--stalled-interval S] [--metrics-port P] [--metrics-host H]
      Takes restore jobs from the BullMQ queue NAME on Redis (added by RestoreQueue in the
      API, from any machine) and runs the jobs it takes together as one batch of up to B
      faces (8), each with its own seed. It holds up to C jobs at once (default B). Progress
      is reported per step; results are kept in Redis or written where the job says. A
      worker that dies loses its jobs to the others after --lock-duration (30 s; looked for
      every --stalled-interval, 30 s). --metrics-port serves GET /metrics (Prometheus) and
      GET /healthz. SIGTERM or SIGINT take no new jobs, finish the ones held, then exit.
  difface models fetch [--only restoration|photos|inpainting] [--dir DIR] [--mirror URL]
        [--from DIR] [--manifest FILE] [--timeout S] [--json]
      Downloads the published weights into the user cache
      (${'${XDG_CACHE_HOME:-~/.cache}'}/difface/models), or DIR, where restore finds them with
      no other step and no Python. Each file's size and sha256 are checked (where none is
      published, the first download's sum is recorded and printed); an interrupted download
      resumes. --only names groups (comma-separated; default: restoration). --mirror URL
      downloads the same file names from another server (a company mirror); --from DIR
      imports files copied there by hand, for a machine with no network. HTTPS_PROXY and
      NO_PROXY are honoured. --timeout: give up on a server silent that long (default 30 s).
  difface convert --unet U.pth --backbone B.pth [--config C | --architecture DIR] [--out DIR]
      Makes a model directory from the published DifFace checkpoints
      (iddpm_ffhq512_ema500000.pth and swinir_restoration512_L1.pth), by default in the user
      cache, where restore finds it. Without --config the checkpoints are read natively (no
      Python) and checked strictly against the published networks, or against the
      weight-less architectures in DIR (made by models/export_architecture.py). With --config
      C (the published sampling YAML, or a JSON with unet_config, backbone_config and
      diffusion_config) Python with PyTorch exports TorchScript networks for that configuration.
  difface compile [--models DIR] [--device D] [--dtype T] [--batch 1,8] [--size H[xW]]
        [--threads N] [--out DIR] [--json]
      Compiles the UNet ahead of time (torch.export and AOTInductor, with the Python and
      PyTorch the package uses), one package per batch size, into DIR/compiled next to the
      model (or DIFFACE_COMPILE_CACHE). Engines then run a package for the batch size and
      image size it was compiled for: on CUDA by default, on the CPU with DIFFACE_COMPILED=on
      (the TorchScript engine is faster there). A package made with another torch, for
      another CPU or GPU, or for another UNet file is stale: the engine warns and runs
      TorchScript for that shape. Prints progress and the compile time of each package.
  difface doctor [--json]
      What difface runs on, for a bug report: node, the addon and its prebuilt variant, the
      libtorch found and where, CUDA (or why not), cuDNN, the GPUs and their memory, the
      model directories, and whether whole photos can be restored. Exit code 1 when the
      addon cannot load.
  difface --version [--json]
      The package, the libtorch it runs on, and CUDA availability.
  difface help`;

async function convertCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      unet: { type: 'string' },
      backbone: { type: 'string' },
      config: { type: 'string' },
      architecture: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.unet === undefined || values.backbone === undefined) {
    throw new UsageError('convert needs --unet and --backbone');
  }
  if (values.config !== undefined && values.architecture !== undefined) {
    throw new UsageError('give either --config (a Python conversion) or --architecture (a native one), not both');
  }
  const out = values.out ?? userModelsDir();
  const card = await convertCheckpoints({
    unet: values.unet,
    backbone: values.backbone,
    out,
    ...(values.config !== undefined ? { config: values.config } : {}),
    ...(values.architecture !== undefined ? { architecture: values.architecture } : {}),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(card) + '\n');
  } else {
    process.stdout.write(`converted: ${out} (UNet ${card.unet.parameters.toLocaleString('en')} and backbone ` +
      `${card.backbone.parameters.toLocaleString('en')} parameters, respacing ${card.schedule.respacing}, ` +
      `start step ${card.sampling.startStep}, eta ${card.sampling.eta}` +
      `${card.version === 2 ? '; the checkpoints are read natively at load' : ''})\n`);
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

function doctorCommand(argv: string[]): number {
  const report = doctorReport();
  process.stdout.write(argv.includes('--json') ? JSON.stringify(report) + '\n' : formatDoctorReport(report));
  return report.runtime === undefined ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'restore':
        return await restoreCommand(rest);
      case 'inpaint':
        return await inpaintCommand(rest);
      case 'serve':
        return await serveCommand(rest);
      case 'worker':
        return await workerCommand(rest);
      case 'convert':
        return await convertCommand(rest);
      case 'models':
        return await modelsCommand(rest);
      case 'compile':
        return await compileCommand(rest);
      case 'doctor':
        return doctorCommand(rest);
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

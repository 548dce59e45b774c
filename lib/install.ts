/**
 * Turning published checkpoints into a model directory without Python: each checkpoint is
 * checked by filling its weight-less architecture from it, natively and strictly, then the
 * checkpoints and architectures are put in the directory beside a version-2 model card. The
 * engine fills the architectures from the checkpoints each time it loads.
 * `difface convert` (without --config), `difface models fetch` and `--from` end here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { readArchitecture } from './architecture';
import type { ArchitectureCard } from './architecture';
import { checkWeights } from './checkpoint';
import type { CheckpointRules } from './checkpoint';
import { DifFaceError } from './errors';
import { makeDirectory, placeFile, sha256File } from './files';
import { writeModelCard } from './modelcard';
import type { ModelCard, NetworkEntry } from './modelcard';
import { packageVersion } from './versions';

export interface CheckpointInput {
  path: string;
  rules: CheckpointRules;
  /** Its sha256 when already known (a fetch checked it), so it is not hashed again. */
  sha256?: string;
}

export interface InstallOptions {
  unet: CheckpointInput;
  backbone: CheckpointInput;
  /** A folder of weight-less architectures with unet and backbone networks. */
  architecture: string;
  out: string;
}

const ROLES = ['unet', 'backbone'] as const;
const WHAT = { unet: 'UNet', backbone: 'backbone' } as const;

function checkReadable(file: string, what: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new DifFaceError('ECHECKPOINT', `the ${what} checkpoint '${file}' does not exist`);
  }
  if (!stat.isFile()) throw new DifFaceError('ECHECKPOINT', `the ${what} checkpoint '${file}' is not a file`);
  if (stat.size === 0) throw new DifFaceError('ECHECKPOINT', `the ${what} checkpoint '${file}' is empty; download it again`);
}

async function networkEntry(architecture: ArchitectureCard, role: 'unet' | 'backbone', input: CheckpointInput,
  out: string, parameters: number): Promise<NetworkEntry> {
  const network = architecture.networks[role];
  if (network === undefined) throw new DifFaceError('EMODELDIR', `the architecture folder '${architecture.dir}' has no ${role}`);
  const name = path.basename(input.path);
  const placed = await placeFile(input.path, out, name);
  const archName = `${role}.arch.pt`;
  const archPlaced = await placeFile(path.join(architecture.dir, network.file), out, archName);
  return {
    file: name,
    bytes: fs.statSync(placed).size,
    sha256: input.sha256 ?? await sha256File(placed),
    parameters,
    config: network.config,
    architecture: { file: archName, bytes: fs.statSync(archPlaced).size, sha256: await sha256File(archPlaced) },
    checkpoint: { unwrap: input.rules.unwrap ?? [], stripPrefix: input.rules.stripPrefix ?? '' },
  };
}

/** Checks both checkpoints against their architectures and writes the model directory; resolves to its card. */
export async function installCheckpoints(options: InstallOptions): Promise<ModelCard> {
  const architecture = readArchitecture(options.architecture, ROLES);
  for (const role of ROLES) checkReadable(options[role].path, WHAT[role]);
  if (path.basename(options.unet.path) === path.basename(options.backbone.path)) {
    throw new DifFaceError('EARG', `the UNet and backbone checkpoints have the same file name (${path.basename(options.unet.path)}); rename one`);
  }
  // Both are read and checked before anything is written, each on a thread of its own; a
  // failure is reported for the UNet first, whichever thread finished first.
  const checks = await Promise.allSettled(ROLES.map((role) => checkWeights(
    path.join(architecture.dir, architecture.networks[role]?.file ?? ''), WHAT[role], options[role].path, options[role].rules)));
  const [unetParameters, backboneParameters] = checks.map((check) => {
    if (check.status === 'rejected') throw check.reason;
    return check.value;
  });
  await makeDirectory(options.out);
  const card: ModelCard = {
    format: 'difface-model',
    version: 2,
    task: architecture.task ?? 'restoration',
    kind: 'published',
    description: `DifFace networks filled at load from ${path.basename(options.unet.path)} and ` +
      `${path.basename(options.backbone.path)}, read natively`,
    unet: await networkEntry(architecture, 'unet', options.unet, options.out, unetParameters ?? 0),
    backbone: await networkEntry(architecture, 'backbone', options.backbone, options.out, backboneParameters ?? 0),
    diffusion: architecture.diffusion,
    schedule: architecture.schedule,
    sampling: architecture.sampling,
    export: {
      torch: architecture.export.torch,
      python: architecture.export.python,
      converter: `difface ${packageVersion()}`,
      createdAt: new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00'),
    },
  };
  try {
    writeModelCard(options.out, card);
  } catch (error) {
    throw new DifFaceError('EOUTPUT', `cannot write the model card in '${options.out}': ${(error as Error).message}`, { cause: error });
  }
  return card;
}

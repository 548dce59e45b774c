/**
 * Folders of weight-less architectures (models/export_architecture.py writes them; the
 * published restoration pair ships in models/architectures/restoration): the networks'
 * TorchScript code with empty placeholders, and architecture.json, which gives their
 * configurations and the schedule and sampling defaults that go with them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { DifFaceError } from './errors';
import type { SamplingDefaults, ScheduleSettings, Task } from './modelcard';
import { packageRoot } from './native';

export const ARCHITECTURE_CARD = 'architecture.json';

export interface ArchitectureNetwork {
  file: string;
  bytes: number;
  sha256: string;
  parameters: number;
  config: Record<string, unknown>;
}

export interface ArchitectureCard {
  /** The folder it was read from. */
  dir: string;
  description: string;
  /** Absent in folders exported before inpainting: 'restoration'. */
  task?: Task;
  networks: Record<string, ArchitectureNetwork>;
  diffusion: Record<string, unknown>;
  schedule: ScheduleSettings;
  sampling: SamplingDefaults;
  export: { torch: string; python: string; exporter: string; createdAt: string };
}

/** The published DifFace restoration networks, without their weights, as the package ships them. */
export function publishedArchitectureDir(): string {
  return path.join(packageRoot, 'models', 'architectures', 'restoration');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function broken(dir: string, problem: string): never {
  throw new DifFaceError('EMODELDIR', `the architecture folder '${dir}' ${problem}; reinstall difface, or export it ` +
    'again with python3 models/export_architecture.py');
}

/** Reads an architecture folder's card and checks that the networks it names are there. */
export function readArchitecture(dir: string, roles: readonly string[]): ArchitectureCard {
  let card: unknown;
  try {
    card = JSON.parse(fs.readFileSync(path.join(dir, ARCHITECTURE_CARD), 'utf8'));
  } catch (error) {
    broken(dir, `has no readable ${ARCHITECTURE_CARD} (${(error as Error).message})`);
  }
  if (!isObject(card) || card.format !== 'difface-architecture' || card.version !== 1 || !isObject(card.networks)) {
    broken(dir, `has a ${ARCHITECTURE_CARD} this difface does not read`);
  }
  for (const role of roles) {
    const network = card.networks[role];
    if (!isObject(network) || typeof network.file !== 'string' || path.basename(network.file) !== network.file) {
      broken(dir, `has no ${role} network`);
    }
    if (!fs.existsSync(path.join(dir, network.file))) broken(dir, `lacks ${network.file}`);
  }
  return { ...(card as unknown as Omit<ArchitectureCard, 'dir'>), dir: path.resolve(dir) };
}

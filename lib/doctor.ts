/**
 * `difface doctor`: what a user pastes into a bug report. Everything difface depends on at
 * run time, each part gathered on its own so that one failing (the addon not loading, say)
 * still leaves the rest to read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { prebuiltVariants } from './binaries';
import { DifFaceError } from './errors';
import { faceFindingAvailable } from './faces';
import { Libtorch, findLibtorches, libtorchName } from './libtorch';
import { MODEL_CARD, readModelCard } from './modelcard';
import { demoModelsDir, resolveModels, userModelsDir } from './models';
import { packageRoot } from './native';
import { Versions, packageVersion, versions } from './versions';

export interface ModelsReport {
  dir: string;
  source: string;
  /** What the model card says it is ('converted', 'demo'), or why it cannot be read. */
  kind?: string;
  problem?: string;
}

export interface DoctorReport {
  difface: string;
  node: string;
  platform: string;
  /** The loaded addon and what it sees; absent when it cannot load (see addonError). */
  runtime?: Versions;
  addonError?: { code: string; message: string };
  /** The prebuilt variants this package ships. */
  variants: string[];
  /** Every libtorch found, in the order the loader prefers them. */
  libtorches: Libtorch[];
  /** The model directory `difface restore` would use, then the others there are. */
  models: ModelsReport[];
  faces: { available: boolean; reason?: string };
}

function describeModels(dir: string, source: string): ModelsReport {
  if (!fs.existsSync(path.join(dir, MODEL_CARD))) return { dir, source, problem: 'no model card here' };
  try {
    return { dir, source, kind: readModelCard(dir).kind };
  } catch (error) {
    return { dir, source, problem: (error as Error).message };
  }
}

function modelsReport(): ModelsReport[] {
  const chosen = resolveModels();
  const others = [{ dir: userModelsDir(), source: 'cache' }, { dir: demoModelsDir(), source: 'demo' }]
    .filter((candidate) => candidate.dir !== chosen.dir);
  return [describeModels(chosen.dir, `${chosen.source} (used)`), ...others.map((o) => describeModels(o.dir, o.source))];
}

export function doctorReport(): DoctorReport {
  const report: DoctorReport = {
    difface: packageVersion(),
    node: process.versions.node,
    platform: `${process.platform}-${process.arch}`,
    variants: prebuiltVariants(packageRoot).map((variant) => variant.name),
    libtorches: findLibtorches(),
    models: modelsReport(),
    faces: faceFindingAvailable(),
  };
  try {
    report.runtime = versions();
  } catch (error) {
    report.addonError = { code: error instanceof DifFaceError ? error.code : 'ENATIVE', message: (error as Error).message };
  }
  return report;
}

function gigabytes(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

function runtimeLines(runtime: Versions): string[] {
  const libtorch = runtime.libtorch;
  return [
    `addon:     ${runtime.binary}${runtime.variant ? ` (${runtime.variant})` : ''}, ${runtime.addon}`,
    `libtorch:  ${runtime.torch}${libtorch ? ` (${libtorch.version ?? 'version unknown'}) at ${libtorch.path}, found by ${libtorch.from}` : ''}`,
    `threads:   ${runtime.threads} (CPU kernels: ${runtime.cpuCapability})`,
    `CUDA:      ${runtime.cuda ? `yes, ${runtime.cudaDevices} device(s)` : `no: ${runtime.cudaReason ?? 'not available'}`}`,
    ...(runtime.cudaGraphs ? ['           (this addon has CUDA graphs and CUDA memory statistics)'] : []),
    `cuDNN:     ${runtime.cudnn ?? 'none'}`,
    ...runtime.gpus.map((gpu, i) => `GPU ${i}:     ${gpu.name}, ${gigabytes(gpu.memoryBytes)}, compute capability ${gpu.capability}`),
    `compiled:  ${runtime.compiledPackages ? "this addon runs compiled UNets ('difface compile')" : 'no: this libtorch has no AOTInductor package loader (2.6 or later has it)'}`,
  ];
}

/** The report as lines of text. */
export function formatDoctorReport(report: DoctorReport): string {
  const lines = [
    `difface:   ${report.difface}`,
    `node:      ${report.node} (${report.platform})`,
    ...(report.runtime ? runtimeLines(report.runtime) : [`addon:     cannot load [${report.addonError?.code}]: ${report.addonError?.message}`]),
    `prebuilt:  ${report.variants.length > 0 ? report.variants.join(', ') : 'none for this platform'}`,
    ...(report.libtorches.length > 0
      ? report.libtorches.map((found, i) => `${i === 0 ? 'found:    ' : '          '} ${libtorchName(found)} at ${found.libDir} ` +
        `(${found.from})${found.problem ? `: ${found.problem}` : ''}`)
      : ['found:     no libtorch']),
    ...report.models.map((models, i) => `${i === 0 ? 'models:   ' : '          '} ${models.dir} [${models.source}] ` +
      `${models.kind ?? models.problem ?? ''}`),
    `faces:     ${report.faces.available ? 'available (dlib)' : `unavailable: ${report.faces.reason ?? ''}`}`,
  ];
  return lines.join('\n') + '\n';
}

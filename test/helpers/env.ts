// Paths, Python and temporary folders for the tests.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.dirname(require.resolve('difface/package.json'));
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
export const referenceDir = path.join(sharedDir, 'reference');
export const smallReferenceDir = path.join(referenceDir, 'small');
export const modelsDir = path.join(repoRoot, 'models');
export const testPyDir = path.join(repoRoot, 'test', 'py');

let python: string | undefined;

/**
 * The python whose torch the tests compare against: DIFFACE_PYTHON, else the project's own
 * (.venv, made by scripts/setup.js), else one on PATH. It becomes DIFFACE_PYTHON for this
 * process and what it starts, so the converter exports with the same torch.
 */
function pythonExecutable(): string {
  if (python !== undefined) return python;
  const candidates = [process.env.DIFFACE_PYTHON, path.join(repoRoot, '.venv', 'bin', 'python'), 'python3', '/usr/bin/python3'];
  for (const candidate of candidates) {
    if (candidate && spawnSync(candidate, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) {
      python = candidate;
      process.env.DIFFACE_PYTHON = candidate;
      return python;
    }
  }
  throw new Error('no python with torch for the tests; run `npm run setup`');
}

/** Runs a Python script; throws with its stderr when it fails. */
export function runPython(script: string, args: string[]): string {
  const result = spawnSync(pythonExecutable(), [script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.status !== 0) {
    throw new Error(`${path.basename(script)} failed (${String(result.status)}):\n${result.stderr}`);
  }
  return result.stdout;
}

const made: string[] = [];

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `difface-${prefix}-`));
  made.push(dir);
  return dir;
}

// Found now, before any test starts the converter or the CLI.
pythonExecutable();

process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

// Paths, Python and temporary folders for the tests.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.dirname(require.resolve('difface/package.json'));
/** Everything the tests read; test/fixtures/README.md says where each file came from. */
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
export const referenceDir = path.join(fixturesDir, 'reference');
export const smallReferenceDir = path.join(referenceDir, 'small');
export const imagesDir = path.join(fixturesDir, 'images');
export const modelsDir = path.join(repoRoot, 'models');
export const testPyDir = path.join(repoRoot, 'test', 'py');

// The package's own search (lib/python.ts): DIFFACE_PYTHON, the project's .venv, then PATH.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { findPython } = require(path.join(repoRoot, 'dist', 'python.js')) as { findPython(): { executable: string } };

/**
 * The python whose torch the tests compare against. It becomes DIFFACE_PYTHON for this
 * process and what it starts, so that the converter exports with the same torch.
 */
function pythonExecutable(): string {
  const { executable } = findPython();
  process.env.DIFFACE_PYTHON = executable;
  return executable;
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

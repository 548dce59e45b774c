/**
 * Finding a Python with PyTorch: the one place that does, for the converter (once per model;
 * the engine itself never needs Python), and in a checkout for the tests and the benchmarks.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { DifFaceError, ErrorCode, isErrorCode } from './errors';
import { packageRoot } from './native';

export interface PythonInfo {
  executable: string;
  torch: string;
}

let found: PythonInfo | undefined;

/**
 * DIFFACE_PYTHON, then the project's own torch (.venv, which scripts/setup.js makes in a
 * checkout; an installed package has none), then the Pythons on PATH.
 */
function candidates(): string[] {
  const list: string[] = [];
  if (process.env.DIFFACE_PYTHON) list.push(process.env.DIFFACE_PYTHON);
  list.push(path.join(packageRoot, '.venv', 'bin', 'python'), 'python3', '/usr/bin/python3', 'python');
  return [...new Set(list)];
}

/** The first Python that can import torch, in the order above; throws EPYTHON if none can. */
export function findPython(): PythonInfo {
  if (found !== undefined) return found;
  const tried: string[] = [];
  for (const executable of candidates()) {
    const probe = spawnSync(executable, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (probe.status === 0) {
      found = { executable, torch: probe.stdout.trim() };
      return found;
    }
    tried.push(executable);
  }
  throw new DifFaceError('EPYTHON',
    `converting checkpoints needs Python 3 with PyTorch, and none of ${tried.join(', ')} can import torch; ` +
    'install it (`python3 -m pip install torch pyyaml`; the torch the engine runs on is the safest, as TorchScript ' +
    'exported by a newer torch may not load in an older libtorch) or set DIFFACE_PYTHON to such a python');
}

/**
 * The coded failure a script of models/ reported on stderr ("DIFFACE_ERROR {code, message}"),
 * or null when it reported none. An unknown code becomes `fallback`.
 */
export function reportedFailure(stderr: string, fallback: ErrorCode, what: string): DifFaceError | null {
  const failure = /^DIFFACE_ERROR (.*)$/m.exec(stderr);
  if (failure === null) return null;
  const reported = JSON.parse(failure[1] ?? '{}') as { code?: string; message?: string };
  return new DifFaceError(isErrorCode(reported.code) ? reported.code : fallback, reported.message ?? `${what} failed`);
}
